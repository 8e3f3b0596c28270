{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "turbine.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name: object names start with it. Short enough for "-etcd-0" and a worker group's name. */}}
{{- define "turbine.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "turbine.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels every object carries (app.kubernetes.io/*). */}}
{{- define "turbine.labels" -}}
helm.sh/chart: {{ include "turbine.chart" . }}
{{ include "turbine.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: turbine
{{- end }}

{{/* The labels selectors match on (never change them: Deployment selectors are immutable). */}}
{{- define "turbine.selectorLabels" -}}
app.kubernetes.io/name: {{ include "turbine.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "turbine.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "turbine.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "turbine.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* etcd client URLs, comma-separated: the external cluster's, else the chart's own etcd. */}}
{{- define "turbine.etcdEndpoints" -}}
{{- if .Values.etcd.external.endpoints }}
{{- join "," .Values.etcd.external.endpoints }}
{{- else }}
{{- printf "http://%s-etcd:2379" (include "turbine.fullname" .) }}
{{- end }}
{{- end }}

{{- define "turbine.natsUrl" -}}
{{- if .Values.nats.external.url }}
{{- .Values.nats.external.url }}
{{- else }}
{{- printf "nats://%s-nats:4222" (include "turbine.fullname" .) }}
{{- end }}
{{- end }}

{{/* Environment shared by the frontend and the workers. */}}
{{- define "turbine.commonEnv" -}}
- name: TURBINE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: HF_HOME
  value: /cache/huggingface
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- if .Values.hfTokenSecret.name }}
- name: HF_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.hfTokenSecret.name }}
      key: {{ .Values.hfTokenSecret.key }}
{{- end }}
{{- if .Values.requestPlaneTokenSecret.name }}
- name: TURBINE_REQUEST_PLANE_TOKEN_FILE
  value: /etc/turbine/request-plane/token
{{- end }}
{{- end }}

{{/* Writable scratch space (the root filesystem is read-only) and the model volume. */}}
{{- define "turbine.commonVolumes" -}}
- name: tmp
  emptyDir: {}
- name: cache
  emptyDir: {}
{{- if .Values.modelPVC.enable }}
- name: model
  persistentVolumeClaim:
    claimName: {{ .Values.modelPVC.name }}
    readOnly: true
{{- end }}
{{- if .Values.requestPlaneTokenSecret.name }}
- name: request-plane-token
  secret:
    secretName: {{ .Values.requestPlaneTokenSecret.name }}
    defaultMode: 0400
    items:
      - key: {{ .Values.requestPlaneTokenSecret.key }}
        path: token
{{- end }}
{{- end }}

{{- define "turbine.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: cache
  mountPath: /cache
{{- if .Values.modelPVC.enable }}
- name: model
  mountPath: {{ .Values.modelPVC.mountPath }}
  readOnly: true
{{- end }}
{{- if .Values.requestPlaneTokenSecret.name }}
- name: request-plane-token
  mountPath: /etc/turbine/request-plane
  readOnly: true
{{- end }}
{{- end }}

{{/* A worker group with workerDefaults filled in: each key the group sets replaces the default whole. */}}
{{- define "turbine.workerGroup" -}}
{{- $g := deepCopy .root.Values.workerDefaults }}
{{- range $k, $v := .group }}
{{- $_ := set $g $k $v }}
{{- end }}
{{- toYaml $g }}
{{- end }}

{{/* The name clients send for a worker group's model: as `turbine worker` derives it (the served
name, else the folder or file stem of a local path, else the Hub id). */}}
{{- define "turbine.servedModelName" -}}
{{- if .model.servedModelName }}
{{- .model.servedModelName }}
{{- else if hasPrefix "/" .model.path }}
{{- base (trimSuffix "/" .model.path) | trimSuffix ".gguf" }}
{{- else }}
{{- .model.path }}
{{- end }}
{{- end }}

{{/* The pools the planner manages, as YAML {pools: [{group, deployment, pool, model, min, max,
initial, gpus}]}: every worker group, or those planner.groups names. A prefill group is its
model's prefill pool, any other its decode pool. */}}
{{- define "turbine.plannerPools" -}}
{{- $root := . }}
{{- $fullname := include "turbine.fullname" . }}
{{- $wanted := dict }}
{{- range .Values.planner.groups }}
{{- $_ := set $wanted .name . }}
{{- end }}
{{- $pools := list }}
{{- range $group := .Values.workerGroups }}
{{- $g := include "turbine.workerGroup" (dict "root" $root "group" $group) | fromYaml }}
{{- if or (not $root.Values.planner.groups) (hasKey $wanted $g.name) }}
{{- $p := default dict (get $wanted $g.name) }}
{{- $role := ternary "prefill" "decode" (eq $g.workerType "prefill") }}
{{- $min := ternary $p.min (ternary 0 1 (eq $role "prefill")) (hasKey $p "min") | int }}
{{- $max := ternary $p.max (max 8 (int $g.replicas)) (hasKey $p "max") | int }}
{{- $initial := min (max (int $g.replicas) $min) $max }}
{{- $model := default (include "turbine.servedModelName" $g) $p.model }}
{{- $pools = append $pools (dict "group" $g.name "deployment" (printf "%s-%s" $fullname $g.name) "pool" $role "model" $model "min" $min "max" $max "initial" $initial "gpus" (int $g.gpus)) }}
{{- end }}
{{- end }}
{{- toYaml (dict "pools" $pools) }}
{{- end }}

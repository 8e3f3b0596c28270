// `turbine doctor`: a preflight of the host, a model, the distributed runtime's services and a
// Kubernetes cluster, as one report of independent checks.
//
// Every check has a stable id ("host.cpu", "model.fit", ...) and always appears in the report,
// with status `skip` when its inputs were not given (no --model, no --etcd-endpoints, no
// kubectl context), so the JSON schema (docs/DOCTOR.md, pinned by tests/unit/doctor) does not
// change with the flags. A `fail` makes the report fail (non-zero exit); `warn` and `info` do
// not. Nothing here throws: every probe turns its errors into the check's status and summary.
//
// Threads: run_doctor() and every check run on the caller's thread; the loopback checks start
// and join their own server threads. GPUs are probed through dlopen() of libcuda/libcudart, so a
// CPU-only build and a host without a GPU need nothing (no GPU is `info`, not a failure).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "common/status.h"

namespace turbine::doctor {

enum class CheckStatus { kPass, kInfo, kWarn, kSkip, kFail };
const char* status_name(CheckStatus status);  // "pass", "info", "warn", "skip", "fail"

struct CheckResult {
  std::string id;     // stable, "<group>.<name>"
  std::string title;  // for the table
  CheckStatus status = CheckStatus::kSkip;
  std::string summary;          // one line, with the numbers that decided the status
  boost::json::object details;  // the measurements, for --json
};

struct Report {
  std::vector<CheckResult> checks;
  bool ok() const;  // no check failed
  const CheckResult* find(const std::string& id) const;
};

// Report -> JSON text (schema "turbine-doctor/1", documented in docs/DOCTOR.md).
std::string report_json(const Report& report, const std::string& turbine_version);
// Report -> a human table, one line per check, then a count line.
std::string report_table(const Report& report);

// Parses one `turbine <subcommand> args...` argument vector with the binary's own flag parser;
// OK or the parser's message. Supplied by the CLI (the doctor module cannot see the commands).
using CommandChecker = std::function<Status(const std::vector<std::string>& argv)>;

struct DoctorOptions {
  // Model: a GGUF file, a llama2.c .bin or a Hugging Face folder (empty: skip the model checks).
  std::string model;
  int max_model_len = 0;  // 0: the model's context length
  double gpu_memory_utilization = 0.9;
  int tensor_parallel_size = 1;
  std::string dtype = "bf16";  // weights on the GPU: bf16, f16, f32
  // Memory of one GPU for the fit check; unset: the first GPU found (else the host's memory,
  // for the CPU backend).
  std::optional<int64_t> gpu_memory_bytes;

  std::string host = "0.0.0.0";  // address the port check binds
  std::vector<uint16_t> ports;   // must be free to bind
  std::string etcd_endpoints;    // "URL[,URL]"; empty: skip
  std::string nats_url;          // empty: skip
  bool loopback = true;          // request-plane and KV-transfer loopback
  int64_t kv_loopback_bytes = int64_t{64} << 20;
  int timeout_ms = 3000;  // per network probe

  // Kubernetes: skipped when `kubectl` is not found or has no current context.
  std::string kubectl = "kubectl";
  std::string helm = "helm";
  std::string chart;                     // the Helm chart for helm_values
  std::vector<std::string> helm_values;  // values files rendered with `helm template`
  CommandChecker check_command;          // null: helm.values only renders
};

Report run_doctor(const DoctorOptions& options);

// The checks one by one (run_doctor calls each once, in this order); exposed for tests.
CheckResult check_cpu();
CheckResult check_memory();
CheckResult check_gpus();
CheckResult check_shm(const std::string& path = "/dev/shm");
CheckResult check_open_files();
// model.files, model.config, model.tokenizer, model.chat_template, model.fit
std::vector<CheckResult> check_model(const DoctorOptions& options);
CheckResult check_ports(const DoctorOptions& options);
CheckResult check_etcd(const DoctorOptions& options);
// nats.pubsub, nats.jetstream
std::vector<CheckResult> check_nats(const DoctorOptions& options);
CheckResult check_request_plane_loopback(const DoctorOptions& options);
CheckResult check_kv_transfer_loopback(const DoctorOptions& options);
// k8s.context, k8s.gpu_nodes, k8s.storage_class, k8s.service_monitor_crd, helm.values
std::vector<CheckResult> check_kubernetes(const DoctorOptions& options);

// Every check id, in report order (the JSON schema's list).
const std::vector<std::string>& check_ids();

// Device bytes the model needs: weights at `dtype` plus the KV cache of one sequence of
// `max_model_len` tokens (K and V, every layer, BF16 cache). Exposed for the fit check's tests.
struct MemoryEstimate {
  int64_t weight_bytes = 0;
  int64_t kv_bytes_per_token = 0;
  int64_t kv_bytes = 0;  // one sequence of max_model_len
  int max_model_len = 0;
};

// The argument vectors of the Turbine containers (command `turbine`, or args starting with a
// subcommand) in `helm template` output; the YAML is the chart's own block style.
std::vector<std::vector<std::string>> turbine_commands_in_manifests(const std::string& yaml);

}  // namespace turbine::doctor

// Kubernetes checks through kubectl (GPU nodes, default storage class, the ServiceMonitor CRD)
// and `helm template` of values files whose Turbine commands go through the binary's parser.
// Without kubectl or a current context the cluster checks are skipped; helm.values needs no
// cluster.
#include <cstdlib>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "doctor/doctor.h"
#include "doctor/probes.h"

namespace turbine::doctor {
namespace {

constexpr int kKubectlTimeoutMs = 15'000;

std::string first_line(const std::string& text) {
  std::string s = text.substr(0, text.find('\n'));
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// The text of one YAML scalar as the chart writes it: plain, "double-quoted" or 'single-quoted'.
std::string yaml_scalar(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
    std::string out;
    for (size_t i = 1; i + 1 < s.size(); ++i) {
      if (s[i] == '\\' && i + 2 < s.size()) {
        const char e = s[++i];
        out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else {
        out += s[i];
      }
    }
    return out;
  }
  if (s.size() >= 2 && s.front() == '\'' && s.back() == '\'') {
    std::string out;
    for (size_t i = 1; i + 1 < s.size(); ++i) {
      out += s[i];
      if (s[i] == '\'' && s[i + 1] == '\'') ++i;
    }
    return out;
  }
  return s;
}

// ["a", "b"] -> {a, b} (no commas inside items: the chart's flow lists are plain words).
std::vector<std::string> flow_list(const std::string& text) {
  std::vector<std::string> out;
  const size_t open = text.find('['), close = text.rfind(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return out;
  std::string item;
  for (size_t i = open + 1; i <= close; ++i) {
    if (i == close || text[i] == ',') {
      size_t b = item.find_first_not_of(' ');
      if (b != std::string::npos) out.push_back(yaml_scalar(item.substr(b)));
      item.clear();
    } else {
      item += text[i];
    }
  }
  return out;
}

size_t indent_of(const std::string& line) {
  const size_t n = line.find_first_not_of(' ');
  return n == std::string::npos ? line.size() : n;
}

bool is_turbine(const std::string& exe) {
  const size_t slash = exe.rfind('/');
  return (slash == std::string::npos ? exe : exe.substr(slash + 1)) == "turbine";
}

}  // namespace

std::vector<std::vector<std::string>> turbine_commands_in_manifests(const std::string& yaml) {
  std::vector<std::string> lines;
  {
    size_t start = 0;
    while (start <= yaml.size()) {
      const size_t end = yaml.find('\n', start);
      lines.push_back(
          yaml.substr(start, end == std::string::npos ? std::string::npos : end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  // Reads the list value of the key on line i ("key: [..]" or a block of "- item" lines below).
  auto read_list = [&lines](size_t& i, size_t key_indent) {
    const std::string& line = lines[i];
    const size_t colon = line.find(':');
    const std::string rest = line.substr(colon + 1);
    if (rest.find('[') != std::string::npos) return flow_list(rest);
    std::vector<std::string> items;
    while (i + 1 < lines.size()) {
      const std::string& next = lines[i + 1];
      const size_t ind = indent_of(next);
      if (ind >= next.size()) break;
      if (next.compare(ind, 2, "- ") != 0 || ind < key_indent) break;
      items.push_back(yaml_scalar(next.substr(ind + 2)));
      ++i;
    }
    return items;
  };
  auto key_at = [](const std::string& line, const std::string& key, size_t* indent) {
    size_t ind = indent_of(line);
    if (line.compare(ind, 2, "- ") == 0) ind += 2;  // first key of a list item
    if (line.compare(ind, key.size() + 1, key + ":") != 0) return false;
    *indent = ind;
    return true;
  };
  std::vector<std::vector<std::string>> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    size_t ind = 0;
    if (!key_at(lines[i], "command", &ind)) continue;
    std::vector<std::string> cmd = read_list(i, ind);
    if (cmd.empty() || !is_turbine(cmd[0])) continue;
    std::vector<std::string> argv(cmd.begin() + 1, cmd.end());
    // `args:` belongs to the same container when it follows at the same indentation before
    // another key of lower indentation.
    for (size_t j = i + 1; j < lines.size(); ++j) {
      const size_t jind = indent_of(lines[j]);
      if (jind >= lines[j].size()) continue;
      if (jind < ind) break;
      size_t kind = 0;
      if (jind == ind && key_at(lines[j], "args", &kind)) {
        std::vector<std::string> args = read_list(j, kind);
        argv.insert(argv.end(), args.begin(), args.end());
        break;
      }
    }
    out.push_back(std::move(argv));
  }
  return out;
}

std::vector<CheckResult> check_kubernetes(const DoctorOptions& o) {
  CheckResult ctx{"k8s.context", "Kubernetes context", CheckStatus::kPass, "", {}};
  CheckResult gpus{"k8s.gpu_nodes", "GPU nodes", CheckStatus::kPass, "", {}};
  CheckResult sc{"k8s.storage_class", "Default storage class", CheckStatus::kPass, "", {}};
  CheckResult crd{"k8s.service_monitor_crd", "ServiceMonitor CRD", CheckStatus::kPass, "", {}};
  CheckResult helm{"helm.values", "Helm values", CheckStatus::kPass, "", {}};

  // ---- helm.values: needs helm and the values, not a cluster.
  if (o.helm_values.empty()) {
    helm.status = CheckStatus::kSkip;
    helm.summary = "no --helm-values given";
  } else {
    std::vector<std::string> problems;
    boost::json::array files;
    int commands = 0;
    for (const std::string& values : o.helm_values) {
      auto r = run_process({o.helm, "template", "turbine", o.chart, "-f", values}, 60'000);
      if (!r) {
        problems.push_back(values + ": " + r.status().message());
        continue;
      }
      if (r->exit_code != 0) {
        problems.push_back(values + ": helm template failed: " + first_line(r->err));
        continue;
      }
      const auto cmds = turbine_commands_in_manifests(r->out);
      boost::json::array checked;
      for (const auto& argv : cmds) {
        ++commands;
        std::string line = "turbine";
        for (const std::string& a : argv) line += " " + a;
        Status st = o.check_command ? o.check_command(argv) : Status::ok();
        checked.push_back(
            boost::json::object{{"command", line}, {"ok", st.is_ok()}, {"error", st.message()}});
        if (!st.is_ok())
          problems.push_back(values + ": `turbine " + (argv.empty() ? "" : argv[0]) +
                             " ...`: " + st.message());
      }
      if (cmds.empty()) problems.push_back(values + ": renders no turbine container");
      files.push_back(boost::json::object{{"values", values}, {"commands", std::move(checked)}});
    }
    helm.details["chart"] = o.chart;
    helm.details["files"] = std::move(files);
    if (!problems.empty()) {
      helm.status = CheckStatus::kFail;
      for (const std::string& p : problems) helm.summary += (helm.summary.empty() ? "" : "; ") + p;
    } else {
      helm.summary = fmt::format(
          "{} values file(s) render; {} turbine command(s) accepted by "
          "the flag parser",
          o.helm_values.size(), commands);
    }
  }

  // ---- the cluster
  auto skip_cluster = [&](const std::string& why) {
    for (CheckResult* c : {&ctx, &gpus, &sc, &crd}) {
      c->status = CheckStatus::kSkip;
      c->summary = why;
    }
    return std::vector<CheckResult>{ctx, gpus, sc, crd, helm};
  };
  if (find_executable(o.kubectl).empty()) return skip_cluster("kubectl not found");
  auto cur = run_process({o.kubectl, "config", "current-context"}, kKubectlTimeoutMs);
  if (!cur || cur->exit_code != 0 || first_line(cur->out).empty())
    return skip_cluster("kubectl has no current context");
  const std::string context = first_line(cur->out);
  ctx.details["context"] = context;
  const std::string timeout = "--request-timeout=10s";
  auto nodes = run_process({o.kubectl, "get", "nodes", "-o", "json", timeout}, kKubectlTimeoutMs);
  if (!nodes || nodes->exit_code != 0) {
    ctx.status = CheckStatus::kFail;
    ctx.summary = fmt::format("context {}: the API server does not answer: {}", context,
                              nodes ? first_line(nodes->err) : nodes.status().message());
    gpus.status = sc.status = crd.status = CheckStatus::kSkip;
    gpus.summary = sc.summary = crd.summary = "the cluster is unreachable";
    return {ctx, gpus, sc, crd, helm};
  }
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(nodes->out, ec);
  const boost::json::array* items = nullptr;
  if (!ec && doc.is_object()) {
    if (auto* it = doc.as_object().if_contains("items"); it && it->is_array())
      items = &it->as_array();
  }
  if (!items) {
    ctx.status = CheckStatus::kFail;
    ctx.summary = "kubectl get nodes -o json returned no node list";
    return {ctx, gpus, sc, crd, helm};
  }
  ctx.summary = fmt::format("context {}: {} node(s)", context, items->size());
  ctx.details["nodes"] = static_cast<int64_t>(items->size());

  int64_t gpu_nodes = 0, gpu_total = 0;
  boost::json::array per_node;
  for (const boost::json::value& n : *items) {
    const auto* o2 = n.if_object();
    if (!o2) continue;
    std::string name;
    if (auto* md = o2->if_contains("metadata"); md && md->is_object())
      if (auto* nm = md->as_object().if_contains("name"); nm && nm->is_string())
        name = std::string(nm->as_string());
    int64_t count = 0;
    if (auto* st = o2->if_contains("status"); st && st->is_object())
      if (auto* al = st->as_object().if_contains("allocatable"); al && al->is_object())
        if (auto* g = al->as_object().if_contains("nvidia.com/gpu"); g && g->is_string())
          count = std::atoll(std::string(g->as_string()).c_str());
    if (count > 0) {
      ++gpu_nodes;
      gpu_total += count;
      per_node.push_back(boost::json::object{{"node", name}, {"gpus", count}});
    }
  }
  gpus.details["gpu_nodes"] = gpu_nodes;
  gpus.details["allocatable_gpus"] = gpu_total;
  gpus.details["nodes"] = std::move(per_node);
  if (gpu_nodes == 0) {
    gpus.status = CheckStatus::kWarn;
    gpus.summary =
        "no node advertises allocatable nvidia.com/gpu (install the NVIDIA device "
        "plugin or GPU operator; CPU workers need gpus: 0)";
  } else {
    gpus.summary =
        fmt::format("{} GPU node(s), {} allocatable nvidia.com/gpu", gpu_nodes, gpu_total);
  }

  auto classes =
      run_process({o.kubectl, "get", "storageclass", "-o", "json", timeout}, kKubectlTimeoutMs);
  std::string default_class;
  if (classes && classes->exit_code == 0) {
    const boost::json::value d = boost::json::parse(classes->out, ec);
    if (!ec && d.is_object())
      if (auto* it = d.as_object().if_contains("items"); it && it->is_array())
        for (const boost::json::value& c : it->as_array()) {
          const auto* md = c.is_object() ? c.as_object().if_contains("metadata") : nullptr;
          if (!md || !md->is_object()) continue;
          const auto* ann = md->as_object().if_contains("annotations");
          if (!ann || !ann->is_object()) continue;
          for (const char* key : {"storageclass.kubernetes.io/is-default-class",
                                  "storageclass.beta.kubernetes.io/is-default-class"}) {
            const auto* v = ann->as_object().if_contains(key);
            if (v && v->is_string() && v->as_string() == "true")
              default_class = std::string(md->as_object().at("name").as_string());
          }
        }
  }
  sc.details["default"] = default_class;
  if (default_class.empty()) {
    sc.status = CheckStatus::kWarn;
    sc.summary =
        "no default StorageClass: a model-cache PVC without storageClassName stays "
        "Pending (set one in the recipe's model-cache.yaml)";
  } else {
    sc.summary = "default StorageClass " + default_class;
  }

  auto c = run_process(
      {o.kubectl, "get", "crd", "servicemonitors.monitoring.coreos.com", "-o", "name", timeout},
      kKubectlTimeoutMs);
  const bool have_crd = c && c->exit_code == 0;
  crd.details["installed"] = have_crd;
  if (have_crd) {
    crd.summary = "servicemonitors.monitoring.coreos.com installed (serviceMonitor.enable works)";
  } else {
    crd.status = CheckStatus::kWarn;
    crd.summary =
        "no ServiceMonitor CRD: install the Prometheus Operator or keep "
        "serviceMonitor.enable false";
  }
  return {ctx, gpus, sc, crd, helm};
}

}  // namespace turbine::doctor

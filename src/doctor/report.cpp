// The report: status names, the JSON document, the table, and run_doctor's order of checks.
#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "doctor/doctor.h"

namespace turbine::doctor {

const char* status_name(CheckStatus status) {
  switch (status) {
    case CheckStatus::kPass: return "pass";
    case CheckStatus::kInfo: return "info";
    case CheckStatus::kWarn: return "warn";
    case CheckStatus::kSkip: return "skip";
    case CheckStatus::kFail: return "fail";
  }
  return "fail";
}

bool Report::ok() const {
  return std::none_of(checks.begin(), checks.end(),
                      [](const CheckResult& c) { return c.status == CheckStatus::kFail; });
}

const CheckResult* Report::find(const std::string& id) const {
  for (const CheckResult& c : checks)
    if (c.id == id) return &c;
  return nullptr;
}

const std::vector<std::string>& check_ids() {
  static const std::vector<std::string> ids = {"host.cpu",
                                               "host.memory",
                                               "host.gpus",
                                               "host.shm",
                                               "host.open_files",
                                               "model.files",
                                               "model.config",
                                               "model.tokenizer",
                                               "model.chat_template",
                                               "model.fit",
                                               "net.ports",
                                               "etcd.lease",
                                               "nats.pubsub",
                                               "nats.jetstream",
                                               "loopback.request_plane",
                                               "loopback.kv_transfer",
                                               "k8s.context",
                                               "k8s.gpu_nodes",
                                               "k8s.storage_class",
                                               "k8s.service_monitor_crd",
                                               "helm.values"};
  return ids;
}

std::string report_json(const Report& report, const std::string& turbine_version) {
  boost::json::object doc;
  doc["schema"] = "turbine-doctor/1";
  doc["turbine_version"] = turbine_version;
  doc["ok"] = report.ok();
  std::array<int64_t, 5> counts{};
  boost::json::array checks;
  for (const CheckResult& c : report.checks) {
    ++counts[static_cast<size_t>(c.status)];
    checks.push_back(boost::json::object{{"id", c.id},
                                         {"title", c.title},
                                         {"status", status_name(c.status)},
                                         {"summary", c.summary},
                                         {"details", c.details}});
  }
  boost::json::object summary;
  for (CheckStatus s : {CheckStatus::kPass, CheckStatus::kInfo, CheckStatus::kWarn,
                        CheckStatus::kSkip, CheckStatus::kFail}) {
    summary[status_name(s)] = counts[static_cast<size_t>(s)];
  }
  doc["counts"] = std::move(summary);
  doc["checks"] = std::move(checks);
  return boost::json::serialize(doc) + "\n";
}

std::string report_table(const Report& report) {
  size_t id_width = 5;
  for (const CheckResult& c : report.checks) id_width = std::max(id_width, c.id.size());
  std::string out = fmt::format("{:<6} {:<{}} {}\n", "STATUS", "CHECK", id_width, "RESULT");
  std::array<int, 5> counts{};
  for (const CheckResult& c : report.checks) {
    ++counts[static_cast<size_t>(c.status)];
    std::string status = status_name(c.status);
    std::transform(status.begin(), status.end(), status.begin(), ::toupper);
    out += fmt::format("{:<6} {:<{}} {}\n", status, c.id, id_width, c.summary);
  }
  out += fmt::format("{} failed, {} warnings, {} passed, {} info, {} skipped\n",
                     counts[static_cast<size_t>(CheckStatus::kFail)],
                     counts[static_cast<size_t>(CheckStatus::kWarn)],
                     counts[static_cast<size_t>(CheckStatus::kPass)],
                     counts[static_cast<size_t>(CheckStatus::kInfo)],
                     counts[static_cast<size_t>(CheckStatus::kSkip)]);
  return out;
}

Report run_doctor(const DoctorOptions& options) {
  Report r;
  auto add = [&r](CheckResult c) { r.checks.push_back(std::move(c)); };
  auto add_all = [&r](std::vector<CheckResult> cs) {
    for (CheckResult& c : cs) r.checks.push_back(std::move(c));
  };
  add(check_cpu());
  add(check_memory());
  add(check_gpus());
  add(check_shm());
  add(check_open_files());
  add_all(check_model(options));
  add(check_ports(options));
  add(check_etcd(options));
  add_all(check_nats(options));
  add(check_request_plane_loopback(options));
  add(check_kv_transfer_loopback(options));
  add_all(check_kubernetes(options));
  return r;
}

}  // namespace turbine::doctor

// `turbine doctor`: the preflight report of src/doctor, as a table or JSON; exit 1 on a failure.
#include "cli/doctor_command.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "doctor/doctor.h"
#include "hub/hub.h"

extern char** environ;

namespace turbine::cli {
namespace {

struct DoctorCmdOptions {
  doctor::DoctorOptions doctor;
  std::vector<int> ports = {8000};
  int64_t gpu_memory_bytes = 0;
  bool json = false;
  std::string revision = "main";
};

// Runs this binary again with TURBINE_CHECK_ARGS=1 (main.cpp: parse only, run nothing), so the
// check is the real parser of every subcommand, whatever this binary was built with.
Status check_command_line(const std::vector<std::string>& argv) {
  std::vector<std::string> args = {"/proc/self/exe"};
  args.insert(args.end(), argv.begin(), argv.end());
  std::vector<char*> cargv;
  for (std::string& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<std::string> env_strings = {"TURBINE_CHECK_ARGS=1"};
  for (char** e = environ; *e; ++e) {
    // The command must stand on its own: flags from TURBINE_* variables of this shell would
    // make a command look complete that is not.
    if (std::string_view(*e).rfind("TURBINE_", 0) != 0) env_strings.emplace_back(*e);
  }
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return internal_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  pid_t pid = -1;
  const int rc =
      ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, cargv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; rc == 0 && (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  if (rc != 0) return internal_error("cannot run /proc/self/exe");
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::ok();
  // CLI11 prints the error, then "Run with --help for more information.".
  std::string msg = out.substr(0, out.find('\n'));
  return invalid_argument(msg.empty() ? "rejected by the flag parser" : msg);
}

int run_doctor_command(DoctorCmdOptions& opts) {
  doctor::DoctorOptions o = opts.doctor;
  o.ports.clear();
  for (int p : opts.ports)
    if (p > 0) o.ports.push_back(static_cast<uint16_t>(p));
  if (opts.gpu_memory_bytes > 0) o.gpu_memory_bytes = opts.gpu_memory_bytes;
  o.check_command = check_command_line;
  // A Hub id is looked up in the cache only: the doctor never downloads (`turbine download`).
  std::error_code ec;
  if (!o.model.empty() && !std::filesystem::exists(o.model, ec) &&
      hub::looks_like_repo_id(o.model)) {
    hub::HubOptions h = hub::hub_options_from_env();
    h.offline = true;
    h.revision = opts.revision;
    if (auto dir = hub::snapshot_download(o.model, h)) o.model = dir->string();
  }
  const doctor::Report report = doctor::run_doctor(o);
  const std::string text =
      opts.json ? doctor::report_json(report, TURBINE_VERSION) : doctor::report_table(report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return report.ok() ? 0 : 1;
}

}  // namespace

void add_doctor_command(CLI::App& app) {
  auto opts = std::make_shared<DoctorCmdOptions>();
  DoctorCmdOptions& d = *opts;
  doctor::DoctorOptions& o = d.doctor;
  auto* cmd = app.add_subcommand(
      "doctor", "Check the host, a model, etcd/NATS and a Kubernetes cluster before serving");
  cmd->add_flag("--json", d.json, "Print the report as JSON (schema in docs/DOCTOR.md)");
  cmd->add_option("--model,-m", o.model,
                  "Model to check: GGUF file, Hugging Face folder, or a Hub id already in the "
                  "cache");
  cmd->add_option("--revision", d.revision, "Hub revision of a cached Hub id")
      ->capture_default_str();
  cmd->add_option("--max-model-len", o.max_model_len,
                  "Context length the KV cache must hold (default: the model's)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--gpu-memory-utilization", o.gpu_memory_utilization,
                  "Share of each GPU's memory for weights and KV cache")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  cmd->add_option("--tensor-parallel-size", o.tensor_parallel_size, "GPUs the model spans")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--dtype", o.dtype, "Weight dtype on the GPU")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}))
      ->capture_default_str();
  cmd->add_option("--gpu-memory", d.gpu_memory_bytes,
                  "Bytes of one GPU for the fit check (default: GPU 0's, else host memory)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--host", o.host, "Address the port check binds")->capture_default_str();
  cmd->add_option("--port", d.ports, "Port that must be free (repeatable; 0: none)")
      ->capture_default_str();
  cmd->add_option("--etcd-endpoints", o.etcd_endpoints, "etcd URL[,URL]: lease round trip")
      ->envname("TURBINE_ETCD_ENDPOINTS");
  cmd->add_option("--nats-url", o.nats_url, "NATS URL: pub/sub round trip and JetStream")
      ->envname("TURBINE_NATS_URL");
  cmd->add_flag("!--no-loopback", o.loopback,
                "Skip the request-plane and KV-transfer loopback measurements");
  cmd->add_option("--kv-loopback-bytes", o.kv_loopback_bytes, "Bytes the KV loopback moves")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--timeout-ms", o.timeout_ms, "Per network probe")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--kubectl", o.kubectl, "kubectl binary")->capture_default_str();
  cmd->add_option("--helm", o.helm, "helm binary")->capture_default_str();
  cmd->add_option("--chart", o.chart, "Helm chart for --helm-values")
      ->default_str("deploy/helm/turbine");
  o.chart = "deploy/helm/turbine";
  cmd->add_option("--helm-values", o.helm_values,
                  "Values file to render with `helm template` and check against this binary's "
                  "flags (repeatable)");
  cmd->callback([opts] { std::exit(run_doctor_command(*opts)); });
}

}  // namespace turbine::cli

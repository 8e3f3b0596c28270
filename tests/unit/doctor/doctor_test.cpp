// `turbine doctor`'s checks, each through its pass and its fail path, and the pinned JSON schema.
// Real etcd and nats-server processes on loopback ports (skipped without them, failing under
// CI=true); kubectl and helm are small fake scripts so no cluster is needed.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <boost/json.hpp>

#include "../runtime/test_processes.h"
#include "doctor/doctor.h"
#include "model/random_model.h"

namespace turbine::doctor {
namespace {
namespace fs = std::filesystem;
namespace ts = runtime::test_support;

// $TURBINE_SHARED, else the checkout's ../shared (ctest runs from the build folder).
fs::path shared_dir() {
  const char* env = std::getenv("TURBINE_SHARED");
  return env ? fs::path(env) : fs::path(TURBINE_SHARED_DEFAULT);
}

// A missing dependency skips locally and fails in CI.
#define REQUIRE_OR_SKIP(cond, what)                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      if (std::getenv("CI") && std::string(std::getenv("CI")) == "true") \
        FAIL() << what << " is required in CI";                          \
      GTEST_SKIP() << what << " is not installed";                       \
    }                                                                    \
  } while (0)

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// A temporary folder removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("turbine-doctor-" + std::to_string(::getpid()) + "-" + std::to_string(ts::free_port()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

const CheckResult* find(const std::vector<CheckResult>& cs, const std::string& id) {
  for (const CheckResult& c : cs)
    if (c.id == id) return &c;
  return nullptr;
}

// A tiny random-weight Hugging Face folder with Qwen2.5's tokenizer.json.
fs::path make_hf_model(const fs::path& dir) {
  const fs::path gz = shared_dir() / "tokenizers" / "qwen2_5" / "tokenizer.json.gz";
  if (!fs::exists(gz)) return {};
  const fs::path tok = dir / "src-tokenizer.json";
  const std::string cmd = "gzip -dc '" + gz.string() + "' > '" + tok.string() + "'";
  if (std::system(cmd.c_str()) != 0) return {};
  model::RandomModelOptions o;
  o.shape = "tiny";
  o.tokenizer = tok;
  o.threads = 1;
  const fs::path out = dir / "tiny";
  if (!model::write_random_model(o, out)) return {};
  return out;
}

DoctorOptions quiet() {
  DoctorOptions o;
  o.loopback = false;
  o.kubectl = "/nonexistent/kubectl";
  return o;
}

// ---- the report ---------------------------------------------------------------------------

TEST(DoctorReport, JsonSchemaIsPinned) {
  DoctorOptions o = quiet();
  const Report r = run_doctor(o);
  boost::json::value v = boost::json::parse(report_json(r, "9.9.9"));
  const boost::json::object& doc = v.as_object();
  std::set<std::string> keys;
  for (const auto& kv : doc) keys.insert(std::string(kv.key()));
  EXPECT_EQ(keys, (std::set<std::string>{"schema", "turbine_version", "ok", "counts", "checks"}));
  EXPECT_EQ(doc.at("schema").as_string(), "turbine-doctor/1");
  EXPECT_EQ(doc.at("turbine_version").as_string(), "9.9.9");
  EXPECT_TRUE(doc.at("ok").is_bool());
  std::set<std::string> count_keys;
  int64_t total = 0;
  for (const auto& kv : doc.at("counts").as_object()) {
    count_keys.insert(std::string(kv.key()));
    total += kv.value().as_int64();
  }
  EXPECT_EQ(count_keys, (std::set<std::string>{"pass", "info", "warn", "skip", "fail"}));
  const boost::json::array& checks = doc.at("checks").as_array();
  EXPECT_EQ(total, static_cast<int64_t>(checks.size()));
  // Every check, always, in this order: the list is the schema.
  const std::vector<std::string> expected = {"host.cpu",
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
  EXPECT_EQ(check_ids(), expected);
  ASSERT_EQ(checks.size(), expected.size());
  for (size_t i = 0; i < checks.size(); ++i) {
    const boost::json::object& c = checks[i].as_object();
    std::set<std::string> ck;
    for (const auto& kv : c) ck.insert(std::string(kv.key()));
    EXPECT_EQ(ck, (std::set<std::string>{"id", "title", "status", "summary", "details"}));
    EXPECT_EQ(c.at("id").as_string(), expected[i]);
    const std::string status(c.at("status").as_string());
    EXPECT_TRUE(status == "pass" || status == "info" || status == "warn" || status == "skip" ||
                status == "fail")
        << status;
    EXPECT_TRUE(c.at("details").is_object());
  }
  // Without inputs the optional checks skip instead of failing.
  EXPECT_EQ(r.find("model.files")->status, CheckStatus::kSkip);
  EXPECT_EQ(r.find("etcd.lease")->status, CheckStatus::kSkip);
  EXPECT_EQ(r.find("k8s.context")->status, CheckStatus::kSkip);
}

TEST(DoctorReport, DocsDescribeEveryCheck) {
  const std::string doc = read_file(fs::path(TURBINE_SOURCE_DIR) / "docs" / "DOCTOR.md");
  ASSERT_FALSE(doc.empty()) << "docs/DOCTOR.md is missing";
  EXPECT_NE(doc.find("turbine-doctor/1"), std::string::npos);
  for (const std::string& id : check_ids())
    EXPECT_NE(doc.find("`" + id + "`"), std::string::npos) << id;
}

TEST(DoctorReport, TableAndExitStatusFollowFailures) {
  Report r;
  r.checks.push_back({"a.b", "A", CheckStatus::kPass, "fine", {}});
  EXPECT_TRUE(r.ok());
  r.checks.push_back({"c.d", "C", CheckStatus::kFail, "broken", {}});
  EXPECT_FALSE(r.ok());
  const std::string t = report_table(r);
  EXPECT_NE(t.find("FAIL   c.d"), std::string::npos) << t;
  EXPECT_NE(t.find("1 failed, 0 warnings, 1 passed"), std::string::npos) << t;
}

// ---- host -----------------------------------------------------------------------------------

TEST(DoctorHost, CpuMemoryAndLimitsReportNumbers) {
  const CheckResult cpu = check_cpu();
  EXPECT_TRUE(cpu.details.contains("avx2"));
  const std::string k(cpu.details.at("cpu_kernels").as_string());
  EXPECT_TRUE(k == "avx512" || k == "avx2" || k == "scalar");
  EXPECT_EQ(cpu.status == CheckStatus::kWarn, k == "scalar");
  const CheckResult mem = check_memory();
  EXPECT_GT(mem.details.at("total_bytes").as_int64(), 0);
  const CheckResult nofile = check_open_files();
  EXPECT_NE(nofile.status, CheckStatus::kFail);
  EXPECT_TRUE(nofile.details.contains("soft"));
}

TEST(DoctorHost, MissingShmWarns) {
  EXPECT_EQ(check_shm("/nonexistent/shm").status, CheckStatus::kWarn);
  const CheckResult shm = check_shm("/dev/shm");
  if (shm.status == CheckStatus::kPass) {
    EXPECT_GE(shm.details.at("size_bytes").as_int64(), 1 << 30);
  }
}

TEST(DoctorHost, NoGpuDriverIsInfoNotFailure) {
  ::setenv("TURBINE_DOCTOR_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
  const CheckResult c = check_gpus();
  ::unsetenv("TURBINE_DOCTOR_LIBCUDA");
  EXPECT_EQ(c.status, CheckStatus::kInfo);
  EXPECT_FALSE(c.details.at("driver_found").as_bool());
  EXPECT_NE(c.summary.find("CPU backend"), std::string::npos);
}

// Sets an environment variable for the scope.
struct ScopedEnv {
  std::string name;
  ScopedEnv(std::string n, const std::string& value) : name(std::move(n)) {
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

TEST(DoctorHost, GpusDriverRuntimeCapabilityMemoryAndPeerAccess) {
  ScopedEnv lib("TURBINE_DOCTOR_LIBCUDA", FAKE_LIBCUDA);
  const CheckResult c = check_gpus();
  EXPECT_TRUE(c.details.at("driver_found").as_bool());
  EXPECT_EQ(c.details.at("driver_cuda_version").as_string(), "12.4");
  const boost::json::array& devs = c.details.at("devices").as_array();
  ASSERT_EQ(devs.size(), 2u);
  EXPECT_EQ(devs[0].at("name").as_string(), "Fake H100 80GB HBM3");
  EXPECT_EQ(devs[0].at("compute_capability").as_string(), "9.0");
  EXPECT_EQ(devs[1].at("total_bytes").as_int64(), int64_t{80} << 30);
  EXPECT_EQ(devs[1].at("free_bytes").as_int64(), int64_t{70} << 30);
  const boost::json::array& peer = c.details.at("peer_access").as_array();
  EXPECT_TRUE(peer[0].as_array()[1].as_bool());
  EXPECT_FALSE(peer[1].as_array()[0].as_bool());
  // One direction without peer access: KV copies between them go through the host.
  EXPECT_EQ(c.status, CheckStatus::kWarn) << c.summary;
  EXPECT_NE(c.summary.find("sm_90"), std::string::npos) << c.summary;
  EXPECT_NE(c.summary.find("peer access"), std::string::npos) << c.summary;
}

TEST(DoctorHost, DriverWithoutDevicesIsInfo) {
  ScopedEnv lib("TURBINE_DOCTOR_LIBCUDA", FAKE_LIBCUDA);
  ScopedEnv err("FAKE_CUDA_INIT_ERROR", "100");
  const CheckResult c = check_gpus();
  EXPECT_EQ(c.status, CheckStatus::kInfo);
  EXPECT_TRUE(c.details.at("driver_found").as_bool());
  EXPECT_NE(c.summary.find("CUDA_ERROR_NO_DEVICE"), std::string::npos) << c.summary;
}

// ---- model ----------------------------------------------------------------------------------

TEST(DoctorModel, HuggingFaceFolderPasses) {
  TempDir t;
  const fs::path m = make_hf_model(t.path);
  REQUIRE_OR_SKIP(!m.empty(), "the shared qwen2_5 tokenizer");
  DoctorOptions o = quiet();
  o.model = m.string();
  o.gpu_memory_bytes = int64_t{1} << 30;
  const auto cs = check_model(o);
  ASSERT_EQ(cs.size(), 5u);
  EXPECT_EQ(find(cs, "model.files")->status, CheckStatus::kPass)
      << find(cs, "model.files")->summary;
  EXPECT_EQ(find(cs, "model.config")->status, CheckStatus::kPass);
  EXPECT_EQ(find(cs, "model.tokenizer")->status, CheckStatus::kPass)
      << find(cs, "model.tokenizer")->summary;
  const CheckResult* fit = find(cs, "model.fit");
  EXPECT_EQ(fit->status, CheckStatus::kPass) << fit->summary;
  EXPECT_LE(fit->details.at("required_bytes").as_int64(),
            fit->details.at("budget_bytes").as_int64());
  // 2 layers x 2 KV heads x 64 x K,V x BF16 per token, 2048 tokens.
  EXPECT_EQ(fit->details.at("kv_bytes_per_token").as_int64(), 2 * 2 * 64 * 2 * 2);
  EXPECT_EQ(fit->details.at("kv_bytes").as_int64(), 1024 * 2048);
}

TEST(DoctorModel, MissingTokenizerFileFails) {
  TempDir t;
  const fs::path m = make_hf_model(t.path);
  REQUIRE_OR_SKIP(!m.empty(), "the shared qwen2_5 tokenizer");
  fs::remove(m / "tokenizer.json");
  DoctorOptions o = quiet();
  o.model = m.string();
  o.gpu_memory_bytes = int64_t{1} << 30;
  const auto cs = check_model(o);
  const CheckResult* files = find(cs, "model.files");
  EXPECT_EQ(files->status, CheckStatus::kFail);
  EXPECT_NE(files->summary.find("tokenizer.json is missing"), std::string::npos) << files->summary;
  EXPECT_EQ(find(cs, "model.tokenizer")->status, CheckStatus::kFail);
}

TEST(DoctorModel, TruncatedWeightsFail) {
  TempDir t;
  const fs::path m = make_hf_model(t.path);
  REQUIRE_OR_SKIP(!m.empty(), "the shared qwen2_5 tokenizer");
  const fs::path st = m / "model.safetensors";
  ASSERT_TRUE(fs::exists(st));
  fs::resize_file(st, fs::file_size(st) - 1000);
  DoctorOptions o = quiet();
  o.model = m.string();
  const auto cs = check_model(o);
  EXPECT_EQ(find(cs, "model.files")->status, CheckStatus::kFail);
  EXPECT_NE(find(cs, "model.files")->summary.find("truncated"), std::string::npos);
}

TEST(DoctorModel, ModelTooLargeForTheBudgetFails) {
  TempDir t;
  const fs::path m = make_hf_model(t.path);
  REQUIRE_OR_SKIP(!m.empty(), "the shared qwen2_5 tokenizer");
  DoctorOptions o = quiet();
  o.model = m.string();
  o.gpu_memory_bytes = int64_t{4} << 20;  // 4 MiB x 0.9 < ~3 MB of weights + 2 MiB of KV
  const auto cs = check_model(o);
  const CheckResult* fit = find(cs, "model.fit");
  EXPECT_EQ(fit->status, CheckStatus::kFail) << fit->summary;
  EXPECT_GT(fit->details.at("required_bytes").as_int64(),
            fit->details.at("budget_bytes").as_int64());
  EXPECT_NE(fit->summary.find("--max-model-len"), std::string::npos);
  // A shorter context fits the same budget.
  o.max_model_len = 128;
  EXPECT_EQ(find(check_model(o), "model.fit")->status, CheckStatus::kPass);
}

TEST(DoctorModel, FitBudgetComesFromTheFirstGpu) {
  const fs::path gguf = shared_dir() / "models" / "stories260K" / "stories260K.gguf";
  REQUIRE_OR_SKIP(fs::exists(gguf), "the shared stories260K model");
  ScopedEnv lib("TURBINE_DOCTOR_LIBCUDA", FAKE_LIBCUDA);
  DoctorOptions o = quiet();
  o.model = gguf.string();
  o.gpu_memory_utilization = 0.5;
  o.tensor_parallel_size = 2;
  const auto cs = check_model(o);
  const CheckResult* fit = find(cs, "model.fit");
  EXPECT_EQ(fit->status, CheckStatus::kPass);
  EXPECT_EQ(fit->details.at("budget_bytes").as_int64(), (int64_t{40} << 30) * 2);
  EXPECT_NE(std::string(fit->details.at("budget_source").as_string()).find("Fake H100"),
            std::string::npos);
}

TEST(DoctorModel, GgufAndMissingPath) {
  const fs::path gguf = shared_dir() / "models" / "stories260K" / "stories260K.gguf";
  REQUIRE_OR_SKIP(fs::exists(gguf), "the shared stories260K model");
  DoctorOptions o = quiet();
  o.model = gguf.string();
  auto cs = check_model(o);
  EXPECT_EQ(find(cs, "model.files")->status, CheckStatus::kPass);
  EXPECT_EQ(find(cs, "model.config")->status, CheckStatus::kPass);
  EXPECT_NE(find(cs, "model.tokenizer")->status, CheckStatus::kFail);
  EXPECT_EQ(find(cs, "model.chat_template")->status, CheckStatus::kInfo);  // plain fallback
  o.model = "/nonexistent/model.gguf";
  cs = check_model(o);
  EXPECT_EQ(find(cs, "model.files")->status, CheckStatus::kFail);
  EXPECT_EQ(find(cs, "model.fit")->status, CheckStatus::kSkip);
}

// ---- network --------------------------------------------------------------------------------

TEST(DoctorNet, PortInUseFails) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  DoctorOptions o = quiet();
  o.host = "127.0.0.1";
  o.ports = {ntohs(a.sin_port), ts::free_port()};
  const CheckResult busy = check_ports(o);
  ::close(fd);
  EXPECT_EQ(busy.status, CheckStatus::kFail);
  EXPECT_NE(busy.summary.find(std::to_string(ntohs(a.sin_port))), std::string::npos);
  EXPECT_EQ(busy.details.at("in_use").as_array().size(), 1u);
  o.ports = {ts::free_port()};
  EXPECT_EQ(check_ports(o).status, CheckStatus::kPass);
}

TEST(DoctorNet, EtcdDownFailsAndUpPasses) {
  DoctorOptions o = quiet();
  o.etcd_endpoints = "http://127.0.0.1:" + std::to_string(ts::free_port());
  o.timeout_ms = 1000;
  const CheckResult down = check_etcd(o);
  EXPECT_EQ(down.status, CheckStatus::kFail);
  EXPECT_NE(down.summary.find("unreachable"), std::string::npos) << down.summary;

  const std::string bin = ts::find_etcd();
  REQUIRE_OR_SKIP(!bin.empty(), "etcd");
  ts::EtcdProcess etcd(bin);
  ASSERT_TRUE(etcd.start());
  o.etcd_endpoints = etcd.url();
  const CheckResult up = check_etcd(o);
  EXPECT_EQ(up.status, CheckStatus::kPass) << up.summary;
  EXPECT_GT(up.details.at("round_trip_ms").as_double(), 0.0);
}

TEST(DoctorNet, NatsWithoutJetStreamFailsThatCheckOnly) {
  DoctorOptions o = quiet();
  o.timeout_ms = 1000;
  o.nats_url = "nats://127.0.0.1:" + std::to_string(ts::free_port());
  auto down = check_nats(o);
  EXPECT_EQ(find(down, "nats.pubsub")->status, CheckStatus::kFail);
  EXPECT_EQ(find(down, "nats.jetstream")->status, CheckStatus::kFail);

  const std::string bin = ts::find_nats_server();
  REQUIRE_OR_SKIP(!bin.empty(), "nats-server");
  const uint16_t port = ts::free_port();
  const pid_t pid = ts::start_nats(bin, port);  // no -js
  o.nats_url = "nats://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(ts::wait_until(
      [&] { return find(check_nats(o), "nats.pubsub")->status != CheckStatus::kFail; },
      std::chrono::seconds(10)));
  auto plain = check_nats(o);
  ts::stop_process(pid);
  EXPECT_NE(find(plain, "nats.pubsub")->status, CheckStatus::kFail)
      << find(plain, "nats.pubsub")->summary;
  const CheckResult* js = find(plain, "nats.jetstream");
  EXPECT_EQ(js->status, CheckStatus::kFail);
  EXPECT_NE(js->summary.find("--jetstream"), std::string::npos) << js->summary;
}

TEST(DoctorNet, NatsWithJetStreamPasses) {
  const std::string bin = ts::find_nats_server();
  REQUIRE_OR_SKIP(!bin.empty(), "nats-server");
  TempDir t;
  const uint16_t port = ts::free_port();
  // max_payload has no command-line flag: the KV-event sizing goes in a config file.
  const fs::path conf = t.path / "nats.conf";
  write_file(conf, "max_payload: 8MB\njetstream {\n  store_dir: \"" + (t.path / "js").string() +
                       "\"\n}\n");
  const pid_t pid = ::fork();
  if (pid == 0) {
    (void)::freopen("/dev/null", "w", stdout);
    (void)::freopen("/dev/null", "w", stderr);
    const std::string p = std::to_string(port);
    ::execl(bin.c_str(), bin.c_str(), "-a", "127.0.0.1", "-p", p.c_str(), "-c", conf.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  DoctorOptions o = quiet();
  o.timeout_ms = 2000;
  o.nats_url = "nats://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(ts::wait_until(
      [&] { return find(check_nats(o), "nats.jetstream")->status == CheckStatus::kPass; },
      std::chrono::seconds(10)));
  auto cs = check_nats(o);
  ts::stop_process(pid);
  EXPECT_EQ(find(cs, "nats.pubsub")->status, CheckStatus::kPass)
      << find(cs, "nats.pubsub")->summary;
  EXPECT_EQ(find(cs, "nats.pubsub")->details.at("max_payload_bytes").as_int64(), 8 << 20);
  EXPECT_TRUE(find(cs, "nats.jetstream")->details.at("enabled").as_bool());
}

TEST(DoctorNet, LoopbacksMeasureAndCanBeTurnedOff) {
  DoctorOptions o;
  o.kv_loopback_bytes = int64_t{8} << 20;
  const CheckResult rp = check_request_plane_loopback(o);
  EXPECT_EQ(rp.status, CheckStatus::kPass) << rp.summary;
  EXPECT_GT(rp.details.at("p50_us").as_double(), 0.0);
  const CheckResult kv = check_kv_transfer_loopback(o);
  EXPECT_EQ(kv.status, CheckStatus::kPass) << kv.summary;
  EXPECT_EQ(kv.details.at("bytes").as_int64(), 8 << 20);
  EXPECT_GT(kv.details.at("gb_per_s").as_double(), 0.0);
  o.loopback = false;
  EXPECT_EQ(check_kv_transfer_loopback(o).status, CheckStatus::kSkip);
}

// ---- Kubernetes -----------------------------------------------------------------------------

// A fake kubectl answering from files in its folder.
fs::path fake_kubectl(const fs::path& dir, bool has_context, bool has_crd) {
  write_file(dir / "nodes.json", R"({"items":[
    {"metadata":{"name":"cpu-0"},"status":{"allocatable":{"cpu":"8"}}},
    {"metadata":{"name":"gpu-0"},"status":{"allocatable":{"nvidia.com/gpu":"8"}}},
    {"metadata":{"name":"gpu-1"},"status":{"allocatable":{"nvidia.com/gpu":"4"}}}]})");
  write_file(dir / "sc.json", R"({"items":[{"metadata":{"name":"fast","annotations":{
    "storageclass.kubernetes.io/is-default-class":"true"}}}]})");
  const fs::path bin = dir / "kubectl";
  write_file(bin,
             std::string("#!/bin/sh\nd=$(dirname \"$0\")\ncase \"$1 $2\" in\n") +
                 "\"config current-context\") " +
                 (has_context ? "echo test-ctx;;\n" : "echo 'error: no context' >&2; exit 1;;\n") +
                 "\"get nodes\") cat \"$d/nodes.json\";;\n"
                 "\"get storageclass\") cat \"$d/sc.json\";;\n"
                 "\"get crd\") " +
                 (has_crd ? "echo crd/x;;\n" : "echo NotFound >&2; exit 1;;\n") +
                 "*) exit 3;;\nesac\n");
  fs::permissions(bin, fs::perms::owner_all);
  return bin;
}

TEST(DoctorKubernetes, SkipsWithoutKubectlOrContext) {
  DoctorOptions o = quiet();
  auto cs = check_kubernetes(o);
  EXPECT_EQ(find(cs, "k8s.context")->status, CheckStatus::kSkip);
  EXPECT_EQ(find(cs, "k8s.gpu_nodes")->status, CheckStatus::kSkip);
  EXPECT_EQ(find(cs, "helm.values")->status, CheckStatus::kSkip);
  TempDir t;
  o.kubectl = fake_kubectl(t.path, false, false).string();
  cs = check_kubernetes(o);
  EXPECT_EQ(find(cs, "k8s.context")->status, CheckStatus::kSkip);
  EXPECT_NE(find(cs, "k8s.context")->summary.find("no current context"), std::string::npos);
}

TEST(DoctorKubernetes, GpuNodesStorageClassAndCrd) {
  TempDir t;
  DoctorOptions o = quiet();
  o.kubectl = fake_kubectl(t.path, true, true).string();
  auto cs = check_kubernetes(o);
  EXPECT_EQ(find(cs, "k8s.context")->status, CheckStatus::kPass)
      << find(cs, "k8s.context")->summary;
  const CheckResult* g = find(cs, "k8s.gpu_nodes");
  EXPECT_EQ(g->status, CheckStatus::kPass);
  EXPECT_EQ(g->details.at("gpu_nodes").as_int64(), 2);
  EXPECT_EQ(g->details.at("allocatable_gpus").as_int64(), 12);
  EXPECT_EQ(find(cs, "k8s.storage_class")->details.at("default").as_string(), "fast");
  EXPECT_EQ(find(cs, "k8s.service_monitor_crd")->status, CheckStatus::kPass);
  o.kubectl = fake_kubectl(t.path, true, false).string();
  write_file(t.path / "nodes.json", R"({"items":[{"metadata":{"name":"c"},"status":{}}]})");
  write_file(t.path / "sc.json", R"({"items":[]})");
  cs = check_kubernetes(o);
  EXPECT_EQ(find(cs, "k8s.gpu_nodes")->status, CheckStatus::kWarn);
  EXPECT_EQ(find(cs, "k8s.storage_class")->status, CheckStatus::kWarn);
  EXPECT_EQ(find(cs, "k8s.service_monitor_crd")->status, CheckStatus::kWarn);
}

TEST(DoctorKubernetes, FindsTurbineCommandsInTheChartsRender) {
  const std::string golden =
      read_file(fs::path(TURBINE_SOURCE_DIR) / "tests/deploy/golden/single-node.yaml");
  ASSERT_FALSE(golden.empty());
  const auto cmds = turbine_commands_in_manifests(golden);
  std::multiset<std::string> subs;
  for (const auto& c : cmds) subs.insert(c.empty() ? "" : c[0]);
  EXPECT_EQ(subs.count("frontend"), 1u);
  EXPECT_EQ(subs.count("worker"), 2u);  // decode and prefill groups
  for (const auto& c : cmds) {
    if (c[0] != "worker") continue;
    auto it = std::find(c.begin(), c.end(), "--model");
    ASSERT_NE(it, c.end());
    EXPECT_EQ(*(it + 1), "/data/Llama-3.1-8B-Instruct");  // quotes removed
  }
  const auto flow = turbine_commands_in_manifests(
      "      containers:\n        - name: dl\n          command: [\"turbine\", \"download\"]\n"
      "          args:\n            - org/model\n            - '--local-dir'\n"
      "          image: x\n        - name: other\n          command: [\"sh\"]\n");
  ASSERT_EQ(flow.size(), 1u);
  EXPECT_EQ(flow[0], (std::vector<std::string>{"download", "org/model", "--local-dir"}));
}

TEST(DoctorKubernetes, HelmValuesGoThroughTheFlagParser) {
  TempDir t;
  write_file(t.path / "render.yaml",
             "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n"
             "        - name: w\n          command: [\"turbine\"]\n          args:\n"
             "            - worker\n            - --dtype\n            - \"fp8\"\n");
  const fs::path helm = t.path / "helm";
  write_file(helm,
             "#!/bin/sh\n[ \"$1\" = template ] || exit 2\ncat \"$(dirname \"$0\")/render.yaml\"\n");
  fs::permissions(helm, fs::perms::owner_all);
  DoctorOptions o = quiet();
  o.helm = helm.string();
  o.chart = "chart";
  o.helm_values = {(t.path / "values.yaml").string()};
  std::vector<std::vector<std::string>> seen;
  o.check_command = [&seen](const std::vector<std::string>& argv) {
    seen.push_back(argv);
    for (const std::string& a : argv)
      if (a == "fp8") return invalid_argument("--dtype: fp8 not in {bf16,f16,f32}");
    return Status::ok();
  };
  auto cs = check_kubernetes(o);
  const CheckResult* h = find(cs, "helm.values");
  EXPECT_EQ(h->status, CheckStatus::kFail);
  EXPECT_NE(h->summary.find("fp8"), std::string::npos) << h->summary;
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], (std::vector<std::string>{"worker", "--dtype", "fp8"}));
  o.check_command = [](const std::vector<std::string>&) { return Status::ok(); };
  EXPECT_EQ(find(check_kubernetes(o), "helm.values")->status, CheckStatus::kPass);
  write_file(helm, "#!/bin/sh\necho 'Error: values don't meet the schema' >&2\nexit 1\n");
  cs = check_kubernetes(o);
  EXPECT_EQ(find(cs, "helm.values")->status, CheckStatus::kFail);
  EXPECT_NE(find(cs, "helm.values")->summary.find("helm template failed"), std::string::npos);
}

}  // namespace
}  // namespace turbine::doctor

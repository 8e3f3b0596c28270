// End-to-end tests of snapshot_download against tests/tools/fake_hub.py on 127.0.0.1.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "hub/hub.h"
#include "test_support/missing_dependency.h"

extern char** environ;

namespace turbine::hub {
namespace {
namespace fs = std::filesystem;

constexpr const char* kRepo = "org/tiny";
constexpr std::size_t kShard1Size = 5000;
constexpr std::size_t kShard2Size = 3000;
constexpr std::size_t kDropAfter = 1000;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

std::string pseudo_random_bytes(std::size_t n, std::uint32_t seed) {
  std::string out(n, '\0');
  for (auto& c : out) {
    seed = seed * 1664525u + 1013904223u;
    c = static_cast<char>(seed >> 24);
  }
  return out;
}

// The interpreter behind `python3`, resolved once: PATH entries such as pyenv shims cost about a
// second per start, which would dominate these tests.
const std::string& python_path() {
  static const std::string path = [] {
    std::string out;
    if (FILE* p = ::popen("python3 -c 'import sys; print(sys.executable)' 2>/dev/null", "r")) {
      char buf[4096];
      while (std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
      ::pclose(p);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }();
  return path;
}

bool python_available() {
  return !python_path().empty();
}

struct Request {
  std::string method;
  std::string path;
  std::string range;          // empty when absent
  std::string authorization;  // empty when absent
};

// fake_hub.py running as a child process for the lifetime of the object.
class FakeHub {
 public:
  ~FakeHub() { stop(); }

  ::testing::AssertionResult start(const fs::path& root, const fs::path& log,
                                   const std::vector<std::string>& extra_args = {}) {
    log_ = log;
    int fds[2];
    if (::pipe(fds) != 0) return ::testing::AssertionFailure() << "pipe failed";
    std::vector<std::string> args = {
        python_path(), std::string(TURBINE_SOURCE_DIR) + "/tests/tools/fake_hub.py",
        "--root",      root.string(),
        "--log",       log.string()};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    const int rc =
        ::posix_spawn(&pid_, python_path().c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      pid_ = -1;
      return ::testing::AssertionFailure() << "cannot start python3";
    }
    out_fd_ = fds[0];
    std::string line;
    while (line.find('\n') == std::string::npos) {
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, 10'000) <= 0)
        return ::testing::AssertionFailure() << "fake_hub.py did not start";
      char buf[64];
      const ssize_t n = ::read(out_fd_, buf, sizeof(buf));
      if (n <= 0) return ::testing::AssertionFailure() << "fake_hub.py exited";
      line.append(buf, static_cast<std::size_t>(n));
    }
    port_ = std::stoi(line);
    return ::testing::AssertionSuccess();
  }

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    out_fd_ = -1;
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<Request> requests() const {
    std::vector<Request> out;
    std::istringstream in(read_file(log_));
    for (std::string line; std::getline(in, line);) {
      boost::system::error_code ec;
      auto v = boost::json::parse(line, ec);
      if (ec || !v.is_object()) continue;
      const auto& o = v.as_object();
      auto str = [&](const char* key) {
        const auto* f = o.if_contains(key);
        return f && f->is_string() ? std::string(f->as_string()) : std::string();
      };
      out.push_back({str("method"), str("path"), str("range"), str("authorization")});
    }
    return out;
  }
  void clear_requests() const { std::ofstream(log_, std::ios::trunc); }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  fs::path log_;
};

// File bodies transferred (GETs of resolve or CDN URLs), as "resolve:<file>" or "cdn".
std::vector<std::string> transfers(const std::vector<Request>& requests) {
  std::vector<std::string> out;
  for (const auto& r : requests) {
    if (r.method != "GET") continue;
    if (r.path.rfind("/__cdn/", 0) == 0) out.push_back("cdn");
    const auto pos = r.path.find("/resolve/");
    if (pos != std::string::npos)
      out.push_back("resolve:" + r.path.substr(r.path.find('/', pos + 9) + 1));
  }
  return out;
}

// Files asked about on resolve URLs (HEAD or GET).
std::set<std::string> files_touched(const std::vector<Request>& requests) {
  std::set<std::string> out;
  for (const auto& r : requests) {
    const auto pos = r.path.find("/resolve/");
    if (pos != std::string::npos) out.insert(r.path.substr(r.path.find('/', pos + 9) + 1));
  }
  return out;
}

bool is_hex(const std::string& s, std::size_t len) {
  return s.size() == len && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// A port nothing listens on: bound once by us, then released.
int closed_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(s);
  return ntohs(addr.sin_port);
}

class SnapshotDownloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!python_available()) TURBINE_MISSING_DEPENDENCY("python3 is not installed");
    // Proxies from the environment must not intercept 127.0.0.1.
    ::setenv("no_proxy", "127.0.0.1,localhost", 1);
    ::setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    std::string tmpl = (fs::path(::testing::TempDir()) / "hub_test_XXXXXX").string();
    tmp_ = ::mkdtemp(tmpl.data());
    hub_root_ = tmp_ / "hub";
    cache_ = tmp_ / "cache";
    make_repo();
  }
  void TearDown() override {
    hub_.stop();
    std::error_code ec;
    if (!tmp_.empty()) fs::remove_all(tmp_, ec);
  }

  void make_repo() {
    const fs::path repo = hub_root_ / "org" / "tiny";
    shard1_ = pseudo_random_bytes(kShard1Size, 1);
    shard2_ = pseudo_random_bytes(kShard2Size, 2);
    write_file(repo / "config.json", R"({"architectures":["LlamaForCausalLM"],"hidden_size":64})");
    write_file(repo / "generation_config.json", R"({"temperature":0.6})");
    write_file(repo / "tokenizer.json", R"({"model":{"type":"BPE"}})");
    write_file(repo / "tokenizer_config.json", R"({"bos_token":"<s>"})");
    write_file(repo / "special_tokens_map.json", R"({"eos_token":"</s>"})");
    write_file(repo / "tokenizer.model", pseudo_random_bytes(300, 3));
    write_file(repo / "model.safetensors.index.json",
               R"({"metadata":{"total_size":8000},"weight_map":{)"
               R"("a.weight":"model-00001-of-00002.safetensors",)"
               R"("b.weight":"model-00002-of-00002.safetensors"}})");
    write_file(repo / "model-00001-of-00002.safetensors", shard1_);
    write_file(repo / "model-00002-of-00002.safetensors", shard2_);
    // Never downloaded: not in the index, other formats, sub-folders, docs.
    write_file(repo / "consolidated.safetensors", pseudo_random_bytes(2000, 4));
    write_file(repo / "pytorch_model.bin", pseudo_random_bytes(2000, 5));
    write_file(repo / "tf_model.h5", "h5");
    write_file(repo / "flax_model.msgpack", "msgpack");
    write_file(repo / "onnx" / "model.onnx", "onnx");
    write_file(repo / "original" / "consolidated.safetensors", "weights");
    write_file(repo / "README.md", "# tiny");
    write_file(repo / ".gitattributes", "*.safetensors filter=lfs");
  }

  void start_hub(const std::vector<std::string>& args = {}) {
    ASSERT_TRUE(hub_.start(hub_root_, tmp_ / "requests.log", args));
  }

  HubOptions options() const {
    HubOptions o;
    o.endpoint = hub_.endpoint();
    o.cache_dir = cache_;
    return o;
  }

  fs::path repo_cache() const { return cache_ / "models--org--tiny"; }

  fs::path tmp_, hub_root_, cache_;
  std::string shard1_, shard2_;
  FakeHub hub_;
};

const std::set<std::string> kExpectedFiles = {"config.json",
                                              "generation_config.json",
                                              "tokenizer.json",
                                              "tokenizer_config.json",
                                              "special_tokens_map.json",
                                              "tokenizer.model",
                                              "model.safetensors.index.json",
                                              "model-00001-of-00002.safetensors",
                                              "model-00002-of-00002.safetensors"};

TEST_F(SnapshotDownloadTest, FetchesOnlyTheNeededFiles) {
  start_hub();
  auto dir = snapshot_download(kRepo, options());
  ASSERT_TRUE(dir) << dir.status().to_string();

  const auto requests = hub_.requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests.front().path, "/api/models/org/tiny/revision/main");
  EXPECT_EQ(files_touched(requests), kExpectedFiles);
  // One GET per file; the two shards are redirected to the CDN and fetched from there.
  const auto bodies = transfers(requests);
  EXPECT_EQ(bodies.size(), kExpectedFiles.size() + 2);
  EXPECT_EQ(std::count(bodies.begin(), bodies.end(), "cdn"), 2);

  EXPECT_EQ(read_file(*dir / "model-00001-of-00002.safetensors"), shard1_);
  EXPECT_EQ(read_file(*dir / "model-00002-of-00002.safetensors"), shard2_);
  EXPECT_EQ(read_file(*dir / "config.json"), read_file(hub_root_ / "org/tiny/config.json"));
  EXPECT_EQ(read_file(*dir / "tokenizer.model"), read_file(hub_root_ / "org/tiny/tokenizer.model"));
}

TEST_F(SnapshotDownloadTest, CacheLayoutMatchesHuggingfaceHub) {
  start_hub();
  std::vector<Progress> progress;
  HubOptions o = options();
  o.on_progress = [&](const Progress& p) { progress.push_back(p); };
  auto dir = snapshot_download(kRepo, o);
  ASSERT_TRUE(dir) << dir.status().to_string();

  const std::string commit = dir->filename().string();
  EXPECT_TRUE(is_hex(commit, 40)) << commit;
  EXPECT_EQ(*dir, repo_cache() / "snapshots" / commit);
  EXPECT_EQ(read_file(repo_cache() / "refs" / "main"), commit);

  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(*dir)) {
    const std::string name = entry.path().filename().string();
    names.insert(name);
    ASSERT_TRUE(entry.is_symlink()) << name;
    const fs::path target = fs::read_symlink(entry.path());
    EXPECT_EQ(target.parent_path(), fs::path("../../blobs")) << name;
    const std::string etag = target.filename().string();
    // LFS files are named by their sha256 (X-Linked-Etag), the others by the git blob sha1.
    const bool lfs = name.size() > 12 && name.substr(name.size() - 12) == ".safetensors";
    EXPECT_TRUE(is_hex(etag, lfs ? 64 : 40)) << name << " -> " << etag;
    EXPECT_TRUE(fs::is_regular_file(repo_cache() / "blobs" / etag)) << etag;
  }
  EXPECT_EQ(names, kExpectedFiles);
  for (const auto& entry : fs::directory_iterator(repo_cache() / "blobs")) {
    EXPECT_EQ(entry.path().extension(), "") << "left behind: " << entry.path();
  }

  // Progress ends at the full size of each shard.
  std::map<std::string, Progress> last;
  for (const auto& p : progress) last[p.filename] = p;
  ASSERT_EQ(last.count("model-00001-of-00002.safetensors"), 1u);
  EXPECT_EQ(last["model-00001-of-00002.safetensors"].bytes_done, kShard1Size);
  EXPECT_EQ(last["model-00001-of-00002.safetensors"].bytes_total, kShard1Size);
  EXPECT_EQ(last["config.json"].file_count, kExpectedFiles.size());
}

TEST_F(SnapshotDownloadTest, SecondCallIsServedFromTheCache) {
  start_hub();
  auto first = snapshot_download(kRepo, options());
  ASSERT_TRUE(first) << first.status().to_string();
  hub_.clear_requests();

  auto second = snapshot_download(kRepo, options());
  ASSERT_TRUE(second) << second.status().to_string();
  EXPECT_EQ(*second, *first);
  const auto requests = hub_.requests();
  ASSERT_EQ(requests.size(), 1u) << "only the revision lookup";
  EXPECT_EQ(requests[0].path, "/api/models/org/tiny/revision/main");

  // Pinned to the commit, a complete snapshot needs no request at all.
  hub_.clear_requests();
  HubOptions pinned = options();
  pinned.revision = first->filename().string();
  auto third = snapshot_download(kRepo, pinned);
  ASSERT_TRUE(third) << third.status().to_string();
  EXPECT_EQ(*third, *first);
  EXPECT_TRUE(hub_.requests().empty());
}

TEST_F(SnapshotDownloadTest, NewCommitDownloadsOnlyChangedFiles) {
  start_hub();
  auto first = snapshot_download(kRepo, options());
  ASSERT_TRUE(first) << first.status().to_string();
  write_file(hub_root_ / "org/tiny/config.json", R"({"hidden_size":128})");
  hub_.clear_requests();

  auto second = snapshot_download(kRepo, options());
  ASSERT_TRUE(second) << second.status().to_string();
  EXPECT_NE(*second, *first);
  EXPECT_EQ(transfers(hub_.requests()), std::vector<std::string>{"resolve:config.json"});
  EXPECT_EQ(read_file(*second / "config.json"), R"({"hidden_size":128})");
  EXPECT_EQ(read_file(*second / "model-00001-of-00002.safetensors"), shard1_);
  EXPECT_EQ(read_file(repo_cache() / "refs" / "main"), second->filename().string());
}

TEST_F(SnapshotDownloadTest, ResumesAnInterruptedDownloadOnTheNextCall) {
  start_hub({"--drop-after", std::to_string(kDropAfter), "--drop-count", "1"});
  HubOptions o = options();
  o.download_retries = 0;
  auto first = snapshot_download(kRepo, o);
  ASSERT_FALSE(first);
  EXPECT_EQ(first.status().code(), StatusCode::kUnavailable) << first.status().to_string();
  EXPECT_NE(first.status().message().find("resumes"), std::string::npos)
      << first.status().message();

  // The first shard stopped after kDropAfter bytes and is kept as blobs/<sha256>.incomplete.
  std::vector<fs::path> partial;
  for (const auto& e : fs::directory_iterator(repo_cache() / "blobs")) {
    if (e.path().extension() == ".incomplete") partial.push_back(e.path());
  }
  ASSERT_EQ(partial.size(), 1u);
  EXPECT_EQ(fs::file_size(partial[0]), kDropAfter);
  EXPECT_FALSE(fs::exists(repo_cache() / "refs" / "main")) << "refs name complete snapshots only";

  hub_.clear_requests();
  auto second = snapshot_download(kRepo, o);
  ASSERT_TRUE(second) << second.status().to_string();
  bool resumed = false;
  for (const auto& r : hub_.requests()) {
    if (r.method == "GET" && r.path.rfind("/__cdn/", 0) == 0 && !r.range.empty()) {
      EXPECT_EQ(r.range, "bytes=" + std::to_string(kDropAfter) + "-");
      resumed = true;
    }
  }
  EXPECT_TRUE(resumed) << "expected a Range request for the remainder";
  EXPECT_EQ(read_file(*second / "model-00001-of-00002.safetensors"), shard1_);
  EXPECT_FALSE(fs::exists(partial[0]));
}

TEST_F(SnapshotDownloadTest, RetriesWithinOneCallResumeFromTheDrop) {
  start_hub({"--drop-after", std::to_string(kDropAfter), "--drop-count", "2"});
  auto dir = snapshot_download(kRepo, options());
  ASSERT_TRUE(dir) << dir.status().to_string();
  std::vector<std::string> ranges;
  for (const auto& r : hub_.requests()) {
    if (r.method == "GET" && r.path.rfind("/__cdn/", 0) == 0) ranges.push_back(r.range);
  }
  // The first shard is dropped twice, kDropAfter bytes each time, and every retry asks only
  // for what is still missing; the second shard then arrives in one piece.
  EXPECT_EQ(ranges,
            (std::vector<std::string>{"", "bytes=" + std::to_string(kDropAfter) + "-",
                                      "bytes=" + std::to_string(2 * kDropAfter) + "-", ""}));
  EXPECT_EQ(read_file(*dir / "model-00001-of-00002.safetensors"), shard1_);
  EXPECT_EQ(read_file(*dir / "model-00002-of-00002.safetensors"), shard2_);
}

TEST_F(SnapshotDownloadTest, SendsTheTokenAsBearer) {
  start_hub({"--token", "hf_secret"});
  auto denied = snapshot_download(kRepo, options());
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(denied.status().message().find("HF_TOKEN"), std::string::npos)
      << denied.status().message();
  EXPECT_NE(denied.status().message().find("401"), std::string::npos) << denied.status().message();

  hub_.clear_requests();
  HubOptions o = options();
  o.token = "hf_secret";
  auto dir = snapshot_download(kRepo, o);
  ASSERT_TRUE(dir) << dir.status().to_string();
  for (const auto& r : hub_.requests()) {
    if (r.path.rfind("/__cdn/", 0) != 0) {
      EXPECT_EQ(r.authorization, "Bearer hf_secret") << r.path;
    }
  }

  HubOptions wrong = options();
  wrong.token = "hf_wrong";
  wrong.revision = "main";
  fs::remove_all(cache_);
  auto rejected = snapshot_download(kRepo, wrong);
  EXPECT_EQ(rejected.status().code(), StatusCode::kUnauthenticated);
}

TEST_F(SnapshotDownloadTest, UnknownRepoAndRevisionAreNotFound) {
  start_hub();
  auto missing = snapshot_download("org/missing", options());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("repository 'org/missing' not found or gated"),
            std::string::npos)
      << missing.status().message();
  EXPECT_NE(missing.status().message().find("set HF_TOKEN"), std::string::npos);

  HubOptions o = options();
  o.revision = "no-such-branch";
  auto bad_revision = snapshot_download(kRepo, o);
  ASSERT_FALSE(bad_revision);
  EXPECT_EQ(bad_revision.status().code(), StatusCode::kNotFound);
  EXPECT_NE(bad_revision.status().message().find("revision 'no-such-branch'"), std::string::npos)
      << bad_revision.status().message();

  EXPECT_EQ(snapshot_download("not a repo", options()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(SnapshotDownloadTest, OfflineUsesTheCacheWithoutRequests) {
  start_hub();
  HubOptions offline = options();
  offline.offline = true;
  auto empty = snapshot_download(kRepo, offline);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound);
  EXPECT_NE(empty.status().message().find("HF_HUB_OFFLINE"), std::string::npos)
      << empty.status().message();
  EXPECT_TRUE(hub_.requests().empty());

  auto online = snapshot_download(kRepo, options());
  ASSERT_TRUE(online) << online.status().to_string();
  hub_.clear_requests();
  auto cached = snapshot_download(kRepo, offline);
  ASSERT_TRUE(cached) << cached.status().to_string();
  EXPECT_EQ(*cached, *online);
  EXPECT_TRUE(hub_.requests().empty());
}

TEST_F(SnapshotDownloadTest, UnreachableEndpointFallsBackToTheCache) {
  HubOptions dead;
  dead.endpoint = "http://127.0.0.1:" + std::to_string(closed_port());
  dead.cache_dir = cache_;
  dead.connect_timeout_ms = 2000;
  auto nothing = snapshot_download(kRepo, dead);
  ASSERT_FALSE(nothing);
  EXPECT_EQ(nothing.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(nothing.status().message().find(dead.endpoint), std::string::npos)
      << nothing.status().message();

  start_hub();
  auto online = snapshot_download(kRepo, options());
  ASSERT_TRUE(online) << online.status().to_string();
  auto cached = snapshot_download(kRepo, dead);
  ASSERT_TRUE(cached) << cached.status().to_string();
  EXPECT_EQ(*cached, *online);
}

}  // namespace
}  // namespace turbine::hub

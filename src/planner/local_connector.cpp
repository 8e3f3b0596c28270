// The local connector: `turbine worker` processes on this host, one child per worker.
//
// A worker is started with the pool's command plus `--status-port P` (a port found free just
// before) and counts as ready once GET /health on that port answers 200 (it has registered).
// Scale-down picks workers that are still starting first, then the ready worker with the fewest
// running + waiting sequences (its /metrics), and sends SIGTERM: the worker deregisters, the
// frontend stops routing to it and lets its requests finish there, and the worker exits when
// they are done. The connector only reaps it; it is never killed while draining unless it
// outlives `drain_timeout_s`.
//
// A worker that exits or is not ready within `ready_timeout_s` is counted and replaced once;
// when the replacement fails too the pool is blocked (no more scale-up, said in the log and the
// `turbine_planner_pool_blocked` metric) rather than retried forever.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "metrics/metrics.h"
#include "planner/connector.h"
#include "planner/http_fetch.h"
#include "planner/prometheus_text.h"

namespace turbine::planner {
namespace {

using Clock = std::chrono::steady_clock;

Result<int> free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status(StatusCode::kUnavailable, "socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  if (port <= 0) return Status(StatusCode::kUnavailable, "no free port for a worker");
  return port;
}

std::string file_safe(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return s;
}

class LocalConnector final : public Connector {
 public:
  LocalConnector(LocalConnectorConfig config, EventLog log)
      : config_(std::move(config)), log_(std::move(log)) {}
  ~LocalConnector() override { shutdown(); }

  void poll() override {
    for (auto& [key, book] : pools_) poll_pool(book);
  }

  Result<PoolState> state(const ModelConfig& model, const PoolConfig& pool) override {
    Book& b = book(model, pool);
    PoolState s;
    for (const Worker& w : b.workers) {
      if (w.phase == Phase::kDraining) {
        ++s.draining;
      } else {
        ++s.replicas;
        if (w.phase == Phase::kReady) ++s.ready;
      }
    }
    s.blocked = b.blocked;
    s.blocked_reason = b.blocked_reason;
    s.start_failures = b.start_failures;
    return s;
  }

  Status scale(const ModelConfig& model, const PoolConfig& pool, int replicas,
               const std::string& reason) override {
    Book& b = book(model, pool);
    int current = 0;
    for (const Worker& w : b.workers) current += w.phase != Phase::kDraining;
    if (replicas > current) {
      if (b.blocked) return Status(StatusCode::kUnavailable, b.blocked_reason);
      for (int i = current; i < replicas; ++i) TURBINE_RETURN_IF_ERROR(spawn(b, 1));
      return Status::ok();
    }
    for (int i = replicas; i < current; ++i) {
      Worker* victim = pick_victim(b);
      if (!victim) break;
      stop(b, *victim, reason);
    }
    return Status::ok();
  }

  void shutdown() override {
    if (shut_down_) return;
    shut_down_ = true;
    bool any = false;
    for (auto& [key, b] : pools_) {
      for (Worker& w : b.workers) {
        if (w.phase != Phase::kDraining) stop(b, w, "planner shutting down");
        any = true;
      }
    }
    if (!any) return;
    spdlog::info("planner: waiting for local workers to drain and exit");
    const auto deadline = Clock::now() + std::chrono::milliseconds(
                                             static_cast<int64_t>(config_.drain_timeout_s * 1e3));
    while (true) {
      bool left = false;
      for (auto& [key, b] : pools_) {
        poll_pool(b);
        left = left || !b.workers.empty();
      }
      if (!left) break;
      if (Clock::now() > deadline) {
        for (auto& [key, b] : pools_) {
          for (Worker& w : b.workers) ::kill(w.pid, SIGKILL);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

 private:
  enum class Phase { kStarting, kReady, kDraining };
  struct Worker {
    pid_t pid = -1;
    int port = 0;
    int seq = 0;
    int attempt = 1;  // 2: the replacement of a worker that never became ready
    Phase phase = Phase::kStarting;
    Clock::time_point started, stop_sent;
  };
  struct Book {
    std::string model;
    PoolRole role = PoolRole::kDecode;
    std::vector<std::string> command;
    std::vector<Worker> workers;
    int next_seq = 0;
    int64_t start_failures = 0;
    bool blocked = false;
    std::string blocked_reason;
  };

  Book& book(const ModelConfig& model, const PoolConfig& pool) {
    Book& b = pools_[model.name + "\x1f" + pool_role_name(pool.role)];
    if (b.command.empty()) {
      b.model = model.name;
      b.role = pool.role;
      b.command = pool.command;
    }
    return b;
  }

  void event(const Book& b, const Worker& w, const char* what, boost::json::object extra = {}) {
    if (!log_) return;
    extra["event"] = what;
    extra["model"] = b.model;
    extra["pool"] = pool_role_name(b.role);
    extra["pid"] = w.pid;
    extra["worker"] = w.seq;
    log_(std::move(extra));
  }

  Status spawn(Book& b, int attempt) {
    TURBINE_ASSIGN_OR_RETURN(int port, free_port());
    Worker w;
    w.port = port;
    w.seq = b.next_seq++;
    w.attempt = attempt;
    std::vector<std::string> args = b.command;
    args.push_back("--status-port");
    args.push_back(std::to_string(port));
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string log_path = "/dev/null";
    if (!config_.log_dir.empty()) {
      log_path = fmt::format("{}/worker-{}-{}-{}.log", config_.log_dir, file_safe(b.model),
                             pool_role_name(b.role), w.seq);
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return Status(StatusCode::kUnavailable, "fork failed");
    if (pid == 0) {
      // Child: only async-signal-safe calls until exec. The worker drains if the planner dies.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);
      int in = ::open("/dev/null", O_RDONLY);
      int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (in >= 0) ::dup2(in, 0);
      if (out >= 0) {
        ::dup2(out, 1);
        ::dup2(out, 2);
      }
      for (int fd = 3; fd < 1024; ++fd) ::close(fd);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    w.pid = pid;
    w.started = Clock::now();
    spdlog::info("planner: started {} worker {} for {} (pid {}, status port {}{})",
                 pool_role_name(b.role), w.seq, b.model, pid, port,
                 attempt > 1 ? ", replacing one that never became ready" : "");
    event(b, w, "worker_started", {{"port", port}, {"attempt", attempt}});
    b.workers.push_back(w);
    return Status::ok();
  }

  // Starting workers first (newest first), then the ready worker with the least work.
  Worker* pick_victim(Book& b) {
    Worker* best = nullptr;
    double best_load = 0;
    for (Worker& w : b.workers) {
      if (w.phase == Phase::kStarting && (!best || w.seq > best->seq)) best = &w;
    }
    if (best) return best;
    for (Worker& w : b.workers) {
      if (w.phase != Phase::kReady) continue;
      double load = 1e18;
      auto reply = http_call({"GET",
                              fmt::format("http://{}:{}/metrics", config_.health_host, w.port),
                              {},
                              "",
                              1.0,
                              ""});
      if (reply && reply->status == 200) {
        if (auto m = MetricSet::parse(reply->body)) {
          load = m->sum(metrics::kEngineRunning).value_or(0) +
                 m->sum(metrics::kEngineWaiting).value_or(0);
        }
      }
      if (!best || load < best_load || (load == best_load && w.seq > best->seq))
        best = &w, best_load = load;
    }
    return best;
  }

  void stop(Book& b, Worker& w, const std::string& reason) {
    ::kill(w.pid, SIGTERM);
    w.phase = Phase::kDraining;
    w.stop_sent = Clock::now();
    spdlog::info("planner: stopping {} worker {} of {} (pid {}): SIGTERM, it drains ({})",
                 pool_role_name(b.role), w.seq, b.model, w.pid, reason);
    event(b, w, "worker_stopping", {{"reason", reason}});
  }

  void fail_start(Book& b, const Worker& w, const std::string& why) {
    ++b.start_failures;
    spdlog::error("planner: {} worker {} of {} (pid {}) never became ready: {}",
                  pool_role_name(b.role), w.seq, b.model, w.pid, why);
    event(b, w, "worker_start_failed", {{"reason", why}, {"attempt", w.attempt}});
    if (w.attempt < 2 && !shut_down_) {
      if (Status st = spawn(b, 2); !st.is_ok())
        spdlog::error("planner: cannot start a replacement: {}", st.message());
      return;
    }
    if (!b.blocked) {
      b.blocked = true;
      b.blocked_reason = fmt::format(
          "a {} worker of {} and its replacement never became ready ({}); not starting more",
          pool_role_name(b.role), b.model, why);
      spdlog::error("planner: {}", b.blocked_reason);
    }
  }

  void poll_pool(Book& b) {
    const auto now = Clock::now();
    for (size_t i = 0; i < b.workers.size();) {
      Worker& w = b.workers[i];
      int status = 0;
      const pid_t r = ::waitpid(w.pid, &status, WNOHANG);
      if (r == w.pid) {
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        const Worker gone = w;
        b.workers.erase(b.workers.begin() + static_cast<std::ptrdiff_t>(i));
        if (gone.phase == Phase::kDraining) {
          const double drain_s = std::chrono::duration<double>(now - gone.stop_sent).count();
          spdlog::info("planner: {} worker {} of {} exited ({}) after draining {:.1f} s",
                       pool_role_name(b.role), gone.seq, b.model, code, drain_s);
          event(b, gone, "worker_exited", {{"code", code}, {"drain_s", drain_s}});
        } else if (gone.phase == Phase::kStarting) {
          event(b, gone, "worker_exited", {{"code", code}});
          fail_start(b, gone, fmt::format("exited with {} while starting", code));
        } else {
          spdlog::warn("planner: {} worker {} of {} (pid {}) exited unexpectedly ({})",
                       pool_role_name(b.role), gone.seq, b.model, gone.pid, code);
          event(b, gone, "worker_exited", {{"code", code}, {"unexpected", true}});
        }
        continue;
      }
      if (w.phase == Phase::kStarting) {
        auto reply = http_call({"GET",
                                fmt::format("http://{}:{}/health", config_.health_host, w.port),
                                {},
                                "",
                                0.5,
                                ""});
        const double age = std::chrono::duration<double>(now - w.started).count();
        if (reply && reply->status == 200) {
          w.phase = Phase::kReady;
          spdlog::info("planner: {} worker {} of {} ready after {:.1f} s", pool_role_name(b.role),
                       w.seq, b.model, age);
          event(b, w, "worker_ready", {{"ready_s", age}});
        } else if (age > config_.ready_timeout_s) {
          ::kill(w.pid, SIGKILL);
          ::waitpid(w.pid, &status, 0);
          const Worker gone = w;
          b.workers.erase(b.workers.begin() + static_cast<std::ptrdiff_t>(i));
          event(b, gone, "worker_exited", {{"code", -SIGKILL}});
          fail_start(b, gone, fmt::format("not healthy after {:.0f} s", config_.ready_timeout_s));
          continue;
        }
      } else if (w.phase == Phase::kDraining &&
                 std::chrono::duration<double>(now - w.stop_sent).count() >
                     config_.drain_timeout_s) {
        spdlog::warn("planner: worker {} of {} still draining after {:.0f} s: SIGKILL", w.seq,
                     b.model, config_.drain_timeout_s);
        ::kill(w.pid, SIGKILL);
      }
      ++i;
    }
  }

  LocalConnectorConfig config_;
  EventLog log_;
  std::map<std::string, Book> pools_;
  bool shut_down_ = false;
};

}  // namespace

std::unique_ptr<Connector> make_local_connector(LocalConnectorConfig config, EventLog log) {
  return std::make_unique<LocalConnector>(std::move(config), std::move(log));
}

}  // namespace turbine::planner

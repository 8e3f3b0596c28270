// Helpers of the runtime tests that run real servers (etcd, nats-server) on random loopback
// ports; a test skips itself when the binary is not installed.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include <curl/curl.h>

namespace turbine::runtime::test_support {

inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

inline std::string find_etcd() {
  for (const char* p : {"/usr/bin/etcd", "/usr/local/bin/etcd"}) {
    if (std::filesystem::exists(p)) return p;
  }
  return {};
}

inline std::string find_nats_server() {
  for (const char* p : {"/usr/sbin/nats-server", "/usr/bin/nats-server"}) {
    if (std::filesystem::exists(p)) return p;
  }
  return {};
}

// An etcd process; stop() kills it, start() runs it again (same ports; data dir kept unless
// wiped).
class EtcdProcess {
 public:
  explicit EtcdProcess(std::string bin) : bin_(std::move(bin)) {
    dir_ = std::filesystem::temp_directory_path() /
           ("turbine-etcd-" + std::to_string(::getpid()) + "-" + std::to_string(free_port()));
    client_port_ = free_port();
    peer_port_ = free_port();
  }
  ~EtcdProcess() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    std::filesystem::remove(dir_.string() + ".log", ec);
  }
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(client_port_); }

  bool start() {
    const std::string client = url();
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string data = (dir_ / "data").string();
      const std::string cluster = "default=" + peer;
      (void)::freopen("/dev/null", "w", stdout);
      (void)::freopen((dir_.string() + ".log").c_str(), "a", stderr);
      ::execl(bin_.c_str(), bin_.c_str(), "--data-dir", data.c_str(), "--listen-client-urls",
              client.c_str(), "--advertise-client-urls", client.c_str(), "--listen-peer-urls",
              peer.c_str(), "--initial-advertise-peer-urls", peer.c_str(), "--initial-cluster",
              cluster.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return wait_until([this] { return healthy(); }, std::chrono::seconds(15));
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void wipe() {
    std::error_code ec;
    std::filesystem::remove_all(dir_ / "data", ec);
  }

 private:
  bool healthy() const {
    CURL* c = curl_easy_init();
    const std::string u = url() + "/version";
    curl_easy_setopt(c, CURLOPT_URL, u.c_str());
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 500L);
    const bool ok = curl_easy_perform(c) == CURLE_OK;
    curl_easy_cleanup(c);
    return ok;
  }
  std::string bin_;
  std::filesystem::path dir_;
  uint16_t client_port_ = 0, peer_port_ = 0;
  pid_t pid_ = -1;
};

// A nats-server on 127.0.0.1:port; SIGKILLed by stop().
inline pid_t start_nats(const std::string& bin, uint16_t port) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    (void)::freopen("/dev/null", "w", stdout);
    (void)::freopen("/dev/null", "w", stderr);
    const std::string p = std::to_string(port);
    ::execl(bin.c_str(), bin.c_str(), "-a", "127.0.0.1", "-p", p.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

inline void stop_process(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

}  // namespace turbine::runtime::test_support

// A stand-in for `turbine worker` in the local connector's tests:
//   fake_worker ok [DRAIN_MS] --status-port P   /health 200 and /metrics; on SIGTERM it answers
//                                               /health 503 for DRAIN_MS, then exits 0
//   fake_worker never --status-port P           listens, but /health stays 503
//   fake_worker crash --status-port P           exits 3 at once
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::atomic<bool> g_term{false};
extern "C" void on_term(int) {
  g_term = true;
}

void answer(int fd, bool healthy) {
  char buf[4096];
  ssize_t n = ::recv(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return;
  buf[n] = 0;
  std::string req(buf);
  std::string body, status = "200 OK";
  if (req.rfind("GET /metrics", 0) == 0) {
    body =
        "# TYPE turbine_engine_running_requests gauge\n"
        "turbine_engine_running_requests{model=\"m\"} 0\n";
  } else if (req.rfind("GET /health", 0) == 0) {
    body = healthy ? "{\"status\":\"healthy\"}" : "{\"status\":\"unhealthy\"}";
    if (!healthy) status = "503 Service Unavailable";
  } else {
    status = "404 Not Found";
  }
  std::string resp = "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n" + body;
  (void)::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  int port = -1, drain_ms = 0;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--status-port") == 0 && i + 1 < argc) {
      port = std::atoi(argv[++i]);
    } else {
      drain_ms = std::atoi(argv[i]);
    }
  }
  if (mode == "crash" || port <= 0) return 3;
  ::signal(SIGTERM, on_term);
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(s, 16) != 0) return 4;
  auto term_at = std::chrono::steady_clock::time_point::max();
  while (true) {
    if (g_term && term_at == std::chrono::steady_clock::time_point::max())
      term_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(drain_ms);
    if (std::chrono::steady_clock::now() >= term_at) return 0;
    pollfd p{s, POLLIN, 0};
    if (::poll(&p, 1, 20) > 0) {
      int c = ::accept(s, nullptr, nullptr);
      if (c >= 0) {
        answer(c, mode == "ok" && !g_term);
        ::close(c);
      }
    }
  }
}

#include "bench/fake_server.h"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <mutex>
#include <thread>

namespace turbine::bench {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// "data: <json>\n\n" framed as one HTTP/1.1 chunk.
void append_event(std::string& out, std::string_view json_text) {
  const size_t n = json_text.size() + 8;  // "data: " + "\n\n"
  out += fmt::format("{:x}\r\ndata: ", n);
  out += json_text;
  out += "\n\n\r\n";
}

std::string http_response(int status, std::string_view reason, std::string_view content_type,
                          std::string_view body, bool keep_alive) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{}",
      status, reason, content_type, body.size(), keep_alive ? "keep-alive" : "close", body);
}

int64_t count_words(std::string_view s) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : s) {
    bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

}  // namespace

class FakeOpenAiServer::Impl {
 public:
  explicit Impl(FakeServerOptions o)
      : options_(std::move(o)), ioc_(std::max(1, options_.n_threads)), acceptor_(ioc_) {}

  Status start() {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(options_.host, ec);
    if (ec) return invalid_argument("fake server: bad host " + options_.host, "host");
    tcp::endpoint ep(addr, options_.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return {StatusCode::kUnavailable,
              "fake server: cannot listen on " + options_.host + ": " + ec.message()};
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(ioc_, accept_loop(), asio::detached);
    for (int i = 0; i < std::max(1, options_.n_threads); ++i)
      threads_.emplace_back([this] { ioc_.run(); });
    return Status::ok();
  }

  void stop() {
    ioc_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(kUseTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        continue;  // EMFILE and friends: keep serving the connections we have
      }
      boost::system::error_code ignored;
      sock.set_option(tcp::no_delay(true), ignored);
      asio::co_spawn(ioc_, session(std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket sock) {
    beast::flat_buffer buf;
    asio::steady_timer timer(sock.get_executor());
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(256 << 20);
      auto [ec, n] = co_await bhttp::async_read(sock, buf, parser, kUseTuple);
      if (ec) co_return;
      const Clock::time_point received = Clock::now();
      auto& req = parser.get();
      const bool keep_alive = req.keep_alive();
      std::string target(req.target());
      std::string out;
      if (req.method() == bhttp::verb::get && target == "/v1/models") {
        out = http_response(
            200, "OK", "application/json",
            fmt::format(
                R"({{"object":"list","data":[{{"id":"{}","object":"model","created":0,"owned_by":"fake"}}]}})",
                options_.model),
            keep_alive);
      } else if (req.method() == bhttp::verb::post && target == "/tokenize") {
        boost::system::error_code jec;
        json::value v = json::parse(req.body(), jec);
        int64_t count = 0;
        if (!jec && v.is_object()) {
          if (const auto* p = v.as_object().if_contains("prompt"); p && p->is_string())
            count = count_words(p->as_string());
        }
        out = http_response(200, "OK", "application/json",
                            fmt::format(R"({{"count":{},"tokens":[]}})", count), keep_alive);
      } else if (req.method() == bhttp::verb::post &&
                 (target == "/v1/completions" || target == "/v1/chat/completions")) {
        const bool chat = target == "/v1/chat/completions";
        co_await generate(sock, timer, req.body(), chat, received, keep_alive);
        if (!keep_alive) co_return;
        continue;
      } else {
        out = http_response(404, "Not Found", "application/json",
                            R"({"error":{"message":"not found","type":"not_found_error"}})",
                            keep_alive);
      }
      auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(out), kUseTuple);
      if (wec || !keep_alive) co_return;
    }
  }

  asio::awaitable<void> generate(tcp::socket& sock, asio::steady_timer& timer,
                                 const std::string& body, bool chat, Clock::time_point received,
                                 bool keep_alive) {
    boost::system::error_code jec;
    json::value v = json::parse(body, jec);
    if (jec || !v.is_object()) {
      std::string out = http_response(
          400, "Bad Request", "application/json",
          R"({"error":{"message":"body is not a JSON object","type":"invalid_request_error"}})",
          keep_alive);
      co_await asio::async_write(sock, asio::buffer(out), kUseTuple);
      co_return;
    }
    const json::object& o = v.as_object();
    int n_tokens = options_.default_output_tokens;
    if (const auto* m = o.if_contains("max_tokens"); m && m->is_int64())
      n_tokens = static_cast<int>(std::max<int64_t>(1, m->as_int64()));
    bool stream = false, include_usage = false;
    if (const auto* s = o.if_contains("stream"); s && s->is_bool()) stream = s->as_bool();
    if (const auto* so = o.if_contains("stream_options"); so && so->is_object()) {
      if (const auto* iu = so->as_object().if_contains("include_usage"); iu && iu->is_bool())
        include_usage = iu->as_bool();
    }
    std::string key;
    if (chat) {
      if (const auto* ms = o.if_contains("messages");
          ms && ms->is_array() && !ms->as_array().empty()) {
        const auto& last = ms->as_array().back();
        if (last.is_object()) {
          if (const auto* c = last.as_object().if_contains("content"); c && c->is_string())
            key = c->as_string();
        }
      }
    } else if (const auto* p = o.if_contains("prompt"); p && p->is_string()) {
      key = p->as_string();
    }
    const int64_t prompt_tokens = count_words(key);
    served_.fetch_add(1, std::memory_order_relaxed);

    const std::string model = options_.model;
    const std::string content_chunk =
        chat
            ? fmt::format(
                  R"({{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":0,"model":"{}","choices":[{{"index":0,"delta":{{"content":" tok"}},"finish_reason":null}}]}})",
                  model)
            : fmt::format(
                  R"({{"id":"cmpl-fake","object":"text_completion","created":0,"model":"{}","choices":[{{"index":0,"text":" tok","finish_reason":null}}]}})",
                  model);
    if (!stream) {
      std::string text;
      for (int i = 0; i < n_tokens; ++i) text += " tok";
      std::string resp =
          chat
              ? fmt::format(
                    R"({{"id":"chatcmpl-fake","object":"chat.completion","created":0,"model":"{}","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"length"}}],"usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}}})",
                    model, text, prompt_tokens, n_tokens, prompt_tokens + n_tokens)
              : fmt::format(
                    R"({{"id":"cmpl-fake","object":"text_completion","created":0,"model":"{}","choices":[{{"index":0,"text":"{}","finish_reason":"length"}}],"usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}}})",
                    model, text, prompt_tokens, n_tokens, prompt_tokens + n_tokens);
      if (options_.ttft_ms > 0) {
        timer.expires_at(received + to_duration(options_.ttft_ms));
        co_await timer.async_wait(kUseTuple);
      }
      std::string out = http_response(200, "OK", "application/json", resp, keep_alive);
      co_await asio::async_write(sock, asio::buffer(out), kUseTuple);
      co_return;
    }
    std::string tail;
    {
      const std::string finish =
          chat
              ? fmt::format(
                    R"({{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":0,"model":"{}","choices":[{{"index":0,"delta":{{}},"finish_reason":"length"}}]}})",
                    model)
              : fmt::format(
                    R"({{"id":"cmpl-fake","object":"text_completion","created":0,"model":"{}","choices":[{{"index":0,"text":"","finish_reason":"length"}}]}})",
                    model);
      append_event(tail, finish);
      if (include_usage) {
        append_event(
            tail,
            fmt::format(
                R"({{"id":"fake","object":"{}","created":0,"model":"{}","choices":[],"usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}}})",
                chat ? "chat.completion.chunk" : "text_completion", model, prompt_tokens, n_tokens,
                prompt_tokens + n_tokens));
      }
      tail += "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";
    }
    std::string out = fmt::format(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: "
        "no-cache\r\nTransfer-Encoding: chunked\r\nConnection: {}\r\n\r\n",
        keep_alive ? "keep-alive" : "close");
    if (chat) {
      append_event(
          out,
          fmt::format(
              R"({{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":0,"model":"{}","choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"finish_reason":null}}]}})",
              model));
    }
    std::string framed;
    append_event(framed, content_chunk);
    FakeTiming timing;
    timing.received = received;
    const bool paced = options_.ttft_ms > 0 || options_.itl_ms > 0;
    if (!paced) {
      // Fastest endpoint: the whole stream in one write.
      out.reserve(out.size() + framed.size() * static_cast<size_t>(n_tokens) + tail.size());
      for (int i = 0; i < n_tokens; ++i) out += framed;
      out += tail;
      if (options_.record_timings) {
        timing.chunks.assign(static_cast<size_t>(n_tokens), Clock::now());
        store_timing(key, std::move(timing));
      }
      co_await asio::async_write(sock, asio::buffer(out), kUseTuple);
    } else {
      // Headers (and the role chunk) at once, as a real server does before the first token.
      auto [hec, hn] = co_await asio::async_write(sock, asio::buffer(out), kUseTuple);
      if (hec) co_return;
      if (options_.record_timings && n_tokens == 0) store_timing(key, std::move(timing));
      for (int i = 0; i < n_tokens; ++i) {
        const auto due = received + to_duration(options_.ttft_ms + options_.itl_ms * i);
        if (due > Clock::now()) {
          timer.expires_at(due);
          co_await timer.async_wait(kUseTuple);
        }
        out = framed;
        if (i + 1 == n_tokens) out += tail;
        if (options_.record_timings) {
          timing.chunks.push_back(Clock::now());
          // Stored before the last write: a client that has read the whole stream may ask for
          // the timings before this coroutine resumes after that write.
          if (i + 1 == n_tokens) store_timing(key, std::move(timing));
        }
        auto [ec, wn] = co_await asio::async_write(sock, asio::buffer(out), kUseTuple);
        if (ec) co_return;
      }
    }
  }

  void store_timing(const std::string& key, FakeTiming timing) {
    std::lock_guard<std::mutex> lock(mutex_);
    timings_[key] = std::move(timing);
  }

  static Clock::duration to_duration(double ms) {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double, std::milli>(ms));
  }

  FakeServerOptions options_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> served_{0};
  std::mutex mutex_;  // guards timings_ (written by any server thread, read by the owner)
  std::unordered_map<std::string, FakeTiming> timings_;
};

FakeOpenAiServer::FakeOpenAiServer(FakeServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
FakeOpenAiServer::~FakeOpenAiServer() {
  stop();
}
Status FakeOpenAiServer::start() {
  return impl_->start();
}
uint16_t FakeOpenAiServer::port() const {
  return impl_->port_;
}
void FakeOpenAiServer::stop() {
  impl_->stop();
}
uint64_t FakeOpenAiServer::requests_served() const {
  return impl_->served_.load();
}
std::unordered_map<std::string, FakeTiming> FakeOpenAiServer::take_timings() {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  return std::move(impl_->timings_);
}

}  // namespace turbine::bench

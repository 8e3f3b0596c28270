#include "bench/runner.h"

#include <unistd.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <deque>
#include <random>
#include <unordered_set>

#include "bench/sse.h"

namespace turbine::bench {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunkBytes = 16 * 1024;
constexpr size_t kMaxErrorBodyBytes = 2048;
constexpr auto kProgressPeriod = std::chrono::milliseconds(250);

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

// An error body from an OpenAI server: {"error": {"message": ...}}; anything else as text.
std::string error_message_from_body(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (const auto* e = v.as_object().if_contains("error")) {
      if (e->is_object()) {
        if (const auto* m = e->as_object().if_contains("message"); m && m->is_string()) {
          return std::string(m->as_string());
        }
      } else if (e->is_string()) {
        return std::string(e->as_string());
      }
    }
  }
  return one_line(body.substr(0, 300));
}

struct Connection {
  explicit Connection(asio::io_context& ioc) : stream(ioc) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;  // bytes read past the previous response stay here
};

enum class Outcome { kDone, kKeepAlive, kRetry };

}  // namespace

Result<Endpoint> parse_endpoint(const std::string& url, ApiKind api) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    return invalid_argument("--url: '" + url + "' is not a URL (expected http://HOST:PORT)", "url");
  }
  const auto& u = *parsed;
  if (u.scheme() == "https") {
    return invalid_argument("--url: https is not supported; use http:// (e.g. via a local proxy)",
                            "url");
  }
  if (u.scheme() != "http") {
    return invalid_argument(
        "--url: scheme '" + std::string(u.scheme()) + "' is not supported; use http://", "url");
  }
  Endpoint e;
  e.host = std::string(u.host_address());
  if (e.host.empty()) return invalid_argument("--url: no host in '" + url + "'", "url");
  if (!e.host.empty() && e.host.front() == '[') e.host = e.host.substr(1, e.host.size() - 2);
  e.port = u.has_port() ? std::string(u.port()) : "80";
  e.host_header = std::string(u.encoded_host_and_port());
  std::string path(u.encoded_path());
  while (!path.empty() && path.back() == '/') path.pop_back();
  e.api = api;
  if (ends_with(path, "/chat/completions")) {
    e.api = ApiKind::kChat;
    e.target = path;
    e.base_path = path.substr(0, path.size() - std::string_view("/v1/chat/completions").size());
  } else if (ends_with(path, "/completions")) {
    e.api = ApiKind::kCompletions;
    e.target = path;
    e.base_path = path.substr(0, path.size() - std::string_view("/v1/completions").size());
  } else {
    if (ends_with(path, "/v1")) path.resize(path.size() - 3);
    e.base_path = path;
    e.target = path + (api == ApiKind::kChat ? "/v1/chat/completions" : "/v1/completions");
  }
  return e;
}

// State of one load point. Lives on the event-loop thread only.
struct PointState {
  PointState(asio::io_context& ioc, PointConfig c)
      : config(std::move(c)), slot_freed(ioc), arrival_timer(ioc), progress_timer(ioc) {}
  PointConfig config;
  Clock::time_point origin;
  std::string model;
  std::vector<RequestResult> results;
  int next = 0;   // next workload index to issue
  int tasks = 0;  // issuers (workers / arrival loop) plus requests in flight
  int in_flight = 0;
  bool stopping = false;  // SIGINT: issue nothing more, cancel what is in flight
  size_t done = 0, errors = 0;
  int64_t output_tokens = 0;
  std::unordered_set<beast::tcp_stream*> active;
  std::unordered_set<asio::steady_timer*> ramp_timers;  // workers waiting for their start
  asio::steady_timer slot_freed;  // a condition variable: cancelled when a request ends
  asio::steady_timer arrival_timer;
  asio::steady_timer progress_timer;
  bool show_progress = false;

  double ms_now() const {
    return std::chrono::duration<double, std::milli>(Clock::now() - origin).count();
  }
  bool may_issue(int i) const {
    if (stopping) return false;
    if (config.num_requests > 0 && i >= config.num_requests) return false;
    if (config.duration_s > 0 && ms_now() >= config.duration_s * 1000) return false;
    return true;
  }
};

class Runner::Impl {
 public:
  Impl(const BenchOptions& options, Endpoint endpoint, const Workload& workload)
      : options_(options), endpoint_(std::move(endpoint)), workload_(workload), signals_(ioc_) {
    if (options_.handle_sigint) signals_.add(SIGINT);
    timeout_ = std::chrono::milliseconds(static_cast<int64_t>(options_.timeout_s * 1000));
  }

  Status resolve() {
    if (!endpoints_.empty()) return Status::ok();
    tcp::resolver resolver(ioc_);
    boost::system::error_code ec;
    endpoints_ = resolver.resolve(endpoint_.host, endpoint_.port, ec);
    if (ec) {
      return {StatusCode::kUnavailable,
              "cannot resolve " + endpoint_.host + ":" + endpoint_.port + ": " + ec.message()};
    }
    return Status::ok();
  }

  std::string where() const { return "http://" + endpoint_.host_header; }

  Status check_reachable() {
    TURBINE_RETURN_IF_ERROR(resolve());
    boost::system::error_code result;
    asio::co_spawn(
        ioc_,
        [&]() -> asio::awaitable<void> {
          beast::tcp_stream s(ioc_);
          s.expires_after(std::min(timeout_, std::chrono::milliseconds(10000)));
          auto [ec, ep] = co_await s.async_connect(endpoints_, kUseTuple);
          result = ec;
        },
        asio::detached);
    ioc_.restart();
    ioc_.run();
    if (result) {
      return {StatusCode::kUnavailable, "cannot connect to " + where() + ": " + result.message() +
                                            " (is the server running?)"};
    }
    return Status::ok();
  }

  // A unary request outside any load point; {status, body}.
  Result<std::pair<int, std::string>> simple_request(bhttp::verb verb, const std::string& target,
                                                     const std::string& body) {
    TURBINE_RETURN_IF_ERROR(resolve());
    Status status = Status::ok();
    std::pair<int, std::string> out;
    asio::co_spawn(
        ioc_,
        [&]() -> asio::awaitable<void> {
          beast::tcp_stream s(ioc_);
          s.expires_after(std::min(timeout_, std::chrono::milliseconds(30000)));
          auto [ec, ep] = co_await s.async_connect(endpoints_, kUseTuple);
          if (ec) {
            status = {StatusCode::kUnavailable,
                      "cannot connect to " + where() + ": " + ec.message()};
            co_return;
          }
          bhttp::request<bhttp::string_body> req{verb, target, 11};
          req.set(bhttp::field::host, endpoint_.host_header);
          if (!options_.api_key.empty())
            req.set(bhttp::field::authorization, "Bearer " + options_.api_key);
          if (verb == bhttp::verb::post) {
            req.set(bhttp::field::content_type, "application/json");
            req.body() = body;
          }
          req.keep_alive(false);
          req.prepare_payload();
          auto [wec, wn] = co_await bhttp::async_write(s, req, kUseTuple);
          beast::flat_buffer buf;
          bhttp::response_parser<bhttp::string_body> p;
          p.body_limit(64 << 20);
          boost::system::error_code rec = wec;
          if (!rec) std::tie(rec, wn) = co_await bhttp::async_read(s, buf, p, kUseTuple);
          if (rec) {
            status = {StatusCode::kUnavailable, where() + target + ": " + rec.message()};
            co_return;
          }
          out = {p.get().result_int(), p.get().body()};
        },
        asio::detached);
    ioc_.restart();
    ioc_.run();
    if (!status.is_ok()) return status;
    return out;
  }

  Result<std::string> first_model() {
    TURBINE_ASSIGN_OR_RETURN(
        auto resp, simple_request(bhttp::verb::get, endpoint_.base_path + "/v1/models", ""));
    if (resp.first != 200) {
      return not_found("GET " + endpoint_.base_path + "/v1/models returned HTTP " +
                           std::to_string(resp.first) + "; pass --model",
                       "model");
    }
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(resp.second, ec);
    const boost::json::value* data =
        !ec && v.is_object() ? v.as_object().if_contains("data") : nullptr;
    if (data && data->is_array() && !data->as_array().empty() && data->as_array()[0].is_object()) {
      if (const auto* id = data->as_array()[0].as_object().if_contains("id");
          id && id->is_string()) {
        return std::string(id->as_string());
      }
    }
    return not_found("GET /v1/models listed no model; pass --model", "model");
  }

  Result<int64_t> count_tokens(const std::string& text) {
    boost::json::object body{{"prompt", text}, {"add_special_tokens", false}};
    TURBINE_ASSIGN_OR_RETURN(auto resp,
                             simple_request(bhttp::verb::post, endpoint_.base_path + "/tokenize",
                                            boost::json::serialize(body)));
    if (resp.first != 200) {
      return not_found("POST /tokenize returned HTTP " + std::to_string(resp.first), "calibrate");
    }
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(resp.second, ec);
    if (!ec && v.is_object()) {
      if (const auto* c = v.as_object().if_contains("count"); c && c->is_int64())
        return c->as_int64();
      if (const auto* t = v.as_object().if_contains("tokens"); t && t->is_array()) {
        return static_cast<int64_t>(t->as_array().size());
      }
    }
    return not_found("POST /tokenize answered without a token count", "calibrate");
  }

  // --- one request -------------------------------------------------------------------------

  asio::awaitable<Outcome> exchange(Connection& conn, const std::string& body, bool reused,
                                    RequestResult& res, PointState& st) {
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, endpoint_.target, 11};
    req.set(bhttp::field::host, endpoint_.host_header);
    req.set(bhttp::field::content_type, "application/json");
    req.set(bhttp::field::accept, "text/event-stream");
    if (!options_.api_key.empty())
      req.set(bhttp::field::authorization, "Bearer " + options_.api_key);
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();

    conn.stream.expires_after(timeout_);
    auto [wec, wn] = co_await bhttp::async_write(conn.stream, req, kUseTuple);
    if (wec) {
      if (reused && !st.stopping) co_return Outcome::kRetry;
      res.error = "sending the request: " + wec.message();
      co_return Outcome::kDone;
    }
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(boost::none);
    conn.stream.expires_after(timeout_);
    auto [hec, hn] = co_await bhttp::async_read_header(conn.stream, conn.buffer, parser, kUseTuple);
    if (hec) {
      // A kept-alive connection the server closed while idle fails here without a byte.
      if (reused && !st.stopping && conn.buffer.size() == 0) co_return Outcome::kRetry;
      res.end_ms = st.ms_now();
      res.error = hec == beast::error::timeout ? "timeout waiting for the response"
                                               : "reading the response: " + hec.message();
      co_return Outcome::kDone;
    }
    res.http_status = parser.get().result_int();
    const bool success = res.http_status == 200;
    SseDecoder decoder;
    std::vector<SseEvent> events;
    std::string error_body;
    double last_chunk_ms = -1;
    bool saw_done = false;
    char chunk[kReadChunkBytes];
    boost::system::error_code ec;
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof(chunk);
      conn.stream.expires_after(timeout_);
      size_t n = 0;
      std::tie(ec, n) =
          co_await bhttp::async_read_some(conn.stream, conn.buffer, parser, kUseTuple);
      const double now_ms = st.ms_now();  // the bytes arrived now; parse time is not counted
      res.end_ms = now_ms;
      if (ec == bhttp::error::need_buffer) ec = {};
      size_t got = sizeof(chunk) - parser.get().body().size;
      if (got > 0) {
        if (!success) {
          if (error_body.size() < kMaxErrorBodyBytes)
            error_body.append(chunk, std::min(got, kMaxErrorBodyBytes));
        } else {
          events.clear();
          decoder.feed(std::string_view(chunk, got), events);
          for (const SseEvent& ev : events) {
            if (!ev.error.empty() && res.error.empty()) res.error = "stream error: " + ev.error;
            if (ev.has_content) {
              if (res.first_token_ms < 0) {
                res.first_token_ms = now_ms;
              } else {
                res.itl_ms.push_back(now_ms - last_chunk_ms);
              }
              last_chunk_ms = now_ms;
              ++res.content_chunks;
            }
            if (ev.has_usage) {
              res.usage_reported = true;
              res.input_tokens = ev.prompt_tokens;
              res.output_tokens = ev.completion_tokens;
            }
            if (ev.done) saw_done = true;
          }
        }
      }
      if (ec) break;
    }
    if (ec) {
      res.error = ec == beast::error::timeout
                      ? "timeout: no data for " + std::to_string(options_.timeout_s) + " s"
                      : "reading the stream: " + ec.message();
      co_return Outcome::kDone;
    }
    if (!success) {
      res.error =
          "HTTP " + std::to_string(res.http_status) + ": " + error_message_from_body(error_body);
      co_return parser.get().keep_alive() ? Outcome::kKeepAlive : Outcome::kDone;
    }
    if (!res.error.empty()) co_return Outcome::kDone;
    if (res.content_chunks == 0 && !saw_done) {
      res.error = "the response is not an SSE stream (no data events)";
      co_return Outcome::kDone;
    }
    res.ok = true;
    co_return parser.get().keep_alive() ? Outcome::kKeepAlive : Outcome::kDone;
  }

  // Starting a request (rendering the body, connecting, writing) costs tens of microseconds. When
  // many responses end together (one decode step of the server), starting all their successors
  // back to back would delay the reads of every other stream, and so their timestamps. Starts
  // therefore queue here and are let through one per pass of the event loop: between two starts
  // the reactor is polled and ready reads are handled first.
  struct Turn {
    explicit Turn(asio::io_context& ioc) : timer(ioc, Clock::time_point::max()) {}
    asio::steady_timer timer;  // cancelled when granted
    bool granted = false;      // co_spawn may run the starter inline, before the wait begins
  };

  asio::awaitable<void> wait_turn_to_start() {
    Turn turn(ioc_);
    start_queue_.push_back(&turn);
    if (!starter_running_) {
      starter_running_ = true;
      asio::co_spawn(ioc_, starter(), asio::detached);
    }
    if (!turn.granted) co_await turn.timer.async_wait(kUseTuple);
  }

  asio::awaitable<void> starter() {
    while (!start_queue_.empty()) {
      Turn* next = start_queue_.front();
      start_queue_.pop_front();
      next->granted = true;
      next->timer.cancel();
      co_await asio::post(ioc_, asio::use_awaitable);  // behind the reactor's next poll
    }
    starter_running_ = false;
  }

  asio::awaitable<void> one_request(int index, std::shared_ptr<PointState> st) {
    co_await wait_turn_to_start();
    const RequestSpec& spec =
        workload_.requests[static_cast<size_t>(index) % workload_.requests.size()];
    // Rendering the prompt happens before the clock starts.
    const std::string body =
        build_request_body(workload_, spec, endpoint_.api, st->model, options_.ignore_eos);
    RequestResult res;
    res.index = index;
    res.start_ms = st->ms_now();
    for (int attempt = 0; attempt < 2 && !st->stopping; ++attempt) {
      std::unique_ptr<Connection> conn;
      bool reused = false;
      // The retry of a kept-alive connection the server had closed opens a fresh one: the next
      // idle connection may be just as stale (every one idle past the server's timeout), and a
      // second stale one would end the request with no error recorded.
      if (attempt == 0 && !idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
        reused = true;
      } else {
        conn = std::make_unique<Connection>(ioc_);
        st->active.insert(&conn->stream);
        conn->stream.expires_after(timeout_);
        auto [ec, ep] = co_await conn->stream.async_connect(endpoints_, kUseTuple);
        st->active.erase(&conn->stream);
        if (ec) {
          res.end_ms = st->ms_now();
          res.error = "connect to " + where() + ": " + ec.message();
          break;
        }
        conn->stream.socket().set_option(tcp::no_delay(true), ec);
      }
      st->active.insert(&conn->stream);
      Outcome outcome = co_await exchange(*conn, body, reused, res, *st);
      st->active.erase(&conn->stream);
      if (outcome == Outcome::kRetry) continue;
      if (outcome == Outcome::kKeepAlive && !st->stopping) idle_.push_back(std::move(conn));
      break;
    }
    if (st->stopping && !res.ok) {
      res.cancelled = true;
      res.error = "cancelled";
    }
    if (!res.usage_reported) {
      res.input_tokens = spec.input_tokens;
      res.output_tokens = res.content_chunks;
    }
    if (res.end_ms < res.start_ms) res.end_ms = st->ms_now();
    if (res.ok) {
      ++st->done;
      st->output_tokens += res.output_tokens;
    } else if (!res.cancelled) {
      ++st->errors;
    }
    st->results.push_back(std::move(res));
    --st->in_flight;
    st->slot_freed.cancel_one();
    task_done(*st);
  }

  void task_done(PointState& st) {
    if (--st.tasks == 0) {
      st.progress_timer.cancel();
      signals_.cancel();
    }
  }

  // Closed loop: send, wait for the response, send the next. With a ramp the worker first waits
  // until its start (ramp_start_s).
  asio::awaitable<void> worker(std::shared_ptr<PointState> st, double start_s) {
    if (start_s > 0 && !st->stopping) {
      asio::steady_timer timer(ioc_);
      timer.expires_at(st->origin + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(start_s)));
      st->ramp_timers.insert(&timer);
      co_await timer.async_wait(kUseTuple);
      st->ramp_timers.erase(&timer);
    }
    while (st->may_issue(st->next)) {
      int i = st->next++;
      ++st->in_flight;
      ++st->tasks;
      co_await one_request(i, st);
    }
    task_done(*st);
  }

  // Open loop: requests start at their arrival times whatever the responses do (up to the cap).
  asio::awaitable<void> arrivals(std::shared_ptr<PointState> st) {
    const PointConfig& c = st->config;
    std::mt19937_64 rng(options_.seed ^ 0x5eedULL);
    std::exponential_distribution<double> gap(
        std::isfinite(c.request_rate) && c.request_rate > 0 ? c.request_rate : 1.0);
    double t_s = 0;
    const double ts0 = workload_.requests.front().timestamp_ms;
    for (int i = 0;; ++i) {
      if (c.num_requests > 0 && i >= c.num_requests) break;
      if (c.arrival == ArrivalKind::kTrace) {
        if (static_cast<size_t>(i) >= workload_.requests.size()) break;
        t_s = (workload_.requests[static_cast<size_t>(i)].timestamp_ms - ts0) / 1000.0 /
              c.trace_speedup;
      } else if (i > 0 && std::isfinite(c.request_rate)) {
        t_s += gap(rng);
      }
      if (c.duration_s > 0 && t_s >= c.duration_s) break;
      if (st->stopping) break;
      auto due = st->origin +
                 std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t_s));
      if (due > Clock::now()) {
        st->arrival_timer.expires_at(due);
        co_await st->arrival_timer.async_wait(kUseTuple);
      }
      while (!st->stopping && c.concurrency > 0 && st->in_flight >= c.concurrency) {
        st->slot_freed.expires_at(Clock::time_point::max());
        co_await st->slot_freed.async_wait(kUseTuple);
      }
      if (st->stopping) break;
      st->next = i + 1;
      ++st->in_flight;
      ++st->tasks;
      asio::co_spawn(ioc_, one_request(i, st), asio::detached);
    }
    task_done(*st);
  }

  asio::awaitable<void> progress(std::shared_ptr<PointState> st) {
    for (;;) {
      st->progress_timer.expires_after(kProgressPeriod);
      auto [ec] = co_await st->progress_timer.async_wait(kUseTuple);
      print_progress(*st, false);
      if (ec || st->tasks == 0) break;
    }
  }

  void print_progress(const PointState& st, bool final) {
    const double elapsed_s = st.ms_now() / 1000.0;
    const size_t finished = st.done + st.errors;
    double frac = 0;
    std::string total;
    if (st.config.num_requests > 0) {
      frac = static_cast<double>(finished) / st.config.num_requests;
      total = std::to_string(st.config.num_requests);
    } else if (st.config.duration_s > 0) {
      frac = elapsed_s / st.config.duration_s;
      total = "?";
    }
    frac = std::clamp(frac, 0.0, 1.0);
    constexpr int kWidth = 24;
    int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(kWidth - filled), '.');
    std::fprintf(
        stderr,
        "\r%s [%s] %zu/%s req  %.1f req/s  %.0f tok/s  in-flight %d  errors %zu  %.1f s\x1b[K%s",
        st.config.label.c_str(), bar.c_str(), finished, total.c_str(),
        elapsed_s > 0 ? static_cast<double>(st.done) / elapsed_s : 0.0,
        elapsed_s > 0 ? static_cast<double>(st.output_tokens) / elapsed_s : 0.0, st.in_flight,
        st.errors, elapsed_s, final ? "\n" : "");
    std::fflush(stderr);
  }

  void on_sigint(PointState& st) {
    st.stopping = true;
    interrupted_ = true;
    boost::system::error_code ec;
    signals_.remove(SIGINT, ec);  // a second Ctrl-C kills the process at once
    for (beast::tcp_stream* s : st.active) s->socket().close(ec);
    st.arrival_timer.cancel();
    st.slot_freed.cancel();
    for (asio::steady_timer* t : st.ramp_timers) t->cancel();
    if (st.show_progress) std::fprintf(stderr, "\ninterrupted: writing the partial report\n");
  }

  PointResult run_point(const PointConfig& config, const std::string& model) {
    PointResult out;
    auto st = std::make_shared<PointState>(ioc_, config);
    st->model = model;
    st->show_progress = options_.progress && ::isatty(STDERR_FILENO) == 1;
    if (Status s = resolve(); !s.is_ok()) {
      RequestResult r;
      r.error = s.message();
      out.results.push_back(r);
      return out;
    }
    if (interrupted_) {
      out.interrupted = true;
      return out;
    }
    st->origin = Clock::now();
    out.origin = st->origin;
    if (config.arrival == ArrivalKind::kClosedLoop) {
      int workers = std::max(1, config.concurrency);
      if (config.num_requests > 0) workers = std::min(workers, config.num_requests);
      st->tasks = workers;
      for (int w = 0; w < workers; ++w) {
        asio::co_spawn(ioc_, worker(st, ramp_start_s(w, workers, config.ramp_up_s)),
                       asio::detached);
      }
    } else {
      st->tasks = 1;
      asio::co_spawn(ioc_, arrivals(st), asio::detached);
    }
    if (st->show_progress) asio::co_spawn(ioc_, progress(st), asio::detached);
    if (options_.handle_sigint) {
      signals_.async_wait([this, st](const boost::system::error_code& ec, int) {
        if (!ec) on_sigint(*st);
      });
    }
    ioc_.restart();
    ioc_.run();
    if (st->show_progress) print_progress(*st, true);
    idle_.clear();  // the next point starts from fresh connections
    out.interrupted = st->stopping;
    out.results = std::move(st->results);
    std::sort(out.results.begin(), out.results.end(),
              [](const RequestResult& a, const RequestResult& b) { return a.index < b.index; });
    return out;
  }

  bool interrupted_ = false;

 private:
  const BenchOptions& options_;
  Endpoint endpoint_;
  const Workload& workload_;
  asio::io_context ioc_{1};  // concurrency hint 1: one thread, Asio may skip its own locking
  asio::signal_set signals_;
  tcp::resolver::results_type endpoints_;
  std::chrono::milliseconds timeout_{600000};
  std::vector<std::unique_ptr<Connection>> idle_;
  std::deque<Turn*> start_queue_;  // requests waiting for their turn to start
  bool starter_running_ = false;
};

Runner::Runner(const BenchOptions& options, Endpoint endpoint, const Workload& workload)
    : impl_(std::make_unique<Impl>(options, std::move(endpoint), workload)) {}
Runner::~Runner() = default;
Status Runner::check_reachable() {
  return impl_->check_reachable();
}
Result<std::string> Runner::first_model() {
  return impl_->first_model();
}
Result<int64_t> Runner::count_tokens(const std::string& text) {
  return impl_->count_tokens(text);
}
PointResult Runner::run_point(const PointConfig& config, const std::string& model) {
  return impl_->run_point(config, model);
}
bool Runner::interrupted() const {
  return impl_->interrupted_;
}

}  // namespace turbine::bench

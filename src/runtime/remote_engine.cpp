#include "runtime/request_plane.h"

#include <spdlog/spdlog.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <unordered_map>

#include "runtime/encoder_wire.h"
#include "runtime/wire.h"

// The client side of the TCP request plane (runtime/request_plane.h): RemoteEngine, its pooled
// connections, their keep-alives and the silence that marks a hung worker.
namespace turbine::runtime {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

}  // namespace

// ============================== RemoteEngine ==============================================

// Whether the worker answers, shared by the connections of one RemoteEngine (any thread).
struct RemoteEngine::Health {
  std::atomic<bool> silent{false};
  std::atomic<bool> probing{false};  // one connection reconnects and pings while silent
};

class RemoteEngine::Connection : public std::enable_shared_from_this<RemoteEngine::Connection> {
 public:
  Connection(const RemoteEngineOptions& options, asio::any_io_executor executor,
             std::shared_ptr<std::atomic<int>> open_count, std::shared_ptr<Health> health)
      : options_(options),
        strand_(asio::make_strand(executor)),
        socket_(strand_),
        connect_timer_(strand_),
        keepalive_(strand_),
        open_count_(std::move(open_count)),
        health_(std::move(health)) {}

  void submit(engine::EngineRequest&& r) {
    asio::post(strand_, [self = shared_from_this(), r = std::move(r)]() mutable {
      self->do_submit(std::move(r));
    });
  }
  // An encoder call: one EncodeRequest frame, answered by one EncodeResponse (or failed like an
  // open generation request when the connection breaks).
  void encode_call(uint64_t id, std::string body, encoder::EncoderCallback done) {
    asio::post(strand_, [self = shared_from_this(), id, body = std::move(body),
                         done = std::move(done)]() mutable {
      self->do_encode(id, std::move(body), std::move(done));
    });
  }
  void cancel(uint64_t id, bool stop) {
    asio::post(strand_, [self = shared_from_this(), id, stop] { self->do_cancel(id, stop); });
  }
  void shutdown() {
    asio::post(strand_, [self = shared_from_this()] {
      self->shut_ = true;
      self->fail_all({StatusCode::kUnavailable, "the remote engine was shut down"}, true);
    });
  }

 private:
  enum class State { kIdle, kConnecting, kOpen };
  struct Open {
    engine::OutputCallback cb;
    bool cancelled = false;
    encoder::EncoderCallback encode_cb = nullptr;  // set for encoder calls (cb is then empty)
  };
  using Clock = std::chrono::steady_clock;

  void do_submit(engine::EngineRequest&& r) {
    if (shut_) {
      engine::EngineOutput out;
      out.finish = engine::FinishReason::kError;
      out.error = Status(StatusCode::kUnavailable, "the remote engine was shut down");
      r.on_output(std::move(out));
      return;
    }
    encode(
        RequestFrame{r.id, std::move(r.prompt), std::move(r.params), std::move(r.disagg), r.trace},
        outbuf_);
    open_[r.id] = Open{std::move(r.on_output), false};
    (*open_count_)++;
    if (state_ == State::kIdle) {
      start_connect();
    } else {
      kick_write();
    }
  }

  void do_encode(uint64_t id, std::string&& body, encoder::EncoderCallback&& done) {
    if (shut_) {
      done(Status(StatusCode::kUnavailable, "the remote engine was shut down"));
      return;
    }
    if (open_.count(id)) {
      done(internal_error("encoder request id " + std::to_string(id) + " is in use"));
      return;
    }
    encode(EncodeRequestFrame{id, std::move(body)}, outbuf_);
    Open o;
    o.encode_cb = std::move(done);
    open_[id] = std::move(o);
    (*open_count_)++;
    if (state_ == State::kIdle) {
      start_connect();
    } else {
      kick_write();
    }
  }

  void do_cancel(uint64_t id, bool stop) {
    auto it = open_.find(id);
    if (it == open_.end() || it->second.cancelled) return;
    it->second.cancelled = true;
    encode(CancelFrame{id, stop}, outbuf_);
    kick_write();
  }

  void start_connect() {
    state_ = State::kConnecting;
    asio::co_spawn(strand_, connect(shared_from_this(), generation_), asio::detached);
  }

  asio::awaitable<void> connect(std::shared_ptr<Connection> self, uint64_t gen) {
    auto hp = split_host_port(options_.address);
    if (!hp) {
      fail_all({StatusCode::kUnavailable, hp.status().message()}, false);
      co_return;
    }
    error_code ec;
    tcp::resolver resolver(strand_);
    auto endpoints = co_await resolver.async_resolve(hp->first, std::to_string(hp->second),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (gen != generation_) co_return;
    if (ec) {
      fail_all({StatusCode::kUnavailable,
                "cannot resolve worker " + options_.address + ": " + ec.message()},
               false);
      co_return;
    }
    auto timed_out = std::make_shared<bool>(false);
    connect_timer_.expires_after(options_.connect_timeout);
    connect_timer_.async_wait([self, gen, timed_out](error_code tec) {
      if (tec || gen != self->generation_) return;
      *timed_out = true;
      error_code ignored;
      self->socket_.close(ignored);
    });
    co_await asio::async_connect(socket_, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    connect_timer_.cancel();
    if (gen != generation_) co_return;
    if (ec) {
      fail_all({StatusCode::kUnavailable, "cannot connect to worker " + options_.address + ": " +
                                              (*timed_out ? "timed out" : ec.message())},
               false);
      co_return;
    }
    socket_.set_option(tcp::no_delay(true), ec);
    state_ = State::kOpen;
    // The Hello goes first, before the requests queued while connecting; a probe of a silent
    // worker pings at once.
    std::string hello;
    encode(HelloFrame{options_.token}, hello);
    if (probing_) encode(PingFrame{++ping_nonce_}, hello);
    outbuf_.insert(0, hello);
    last_heard_ = Clock::now();
    if (options_.silence_timeout.count() > 0) {
      asio::co_spawn(strand_, keepalive(self, gen), asio::detached);
    }
    kick_write();
    co_await read_loop(gen);
  }

  // Pings the worker while the connection is open and gives it up when nothing was heard for
  // silence_timeout: the worker's process is stopped, wedged or unreachable.
  asio::awaitable<void> keepalive(std::shared_ptr<Connection> self, uint64_t gen) {
    while (gen == generation_ && state_ == State::kOpen) {
      keepalive_.expires_after(options_.ping_interval);
      error_code ec;
      co_await keepalive_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (gen != generation_ || state_ != State::kOpen) co_return;
      const auto silent_for = Clock::now() - last_heard_;
      if (silent_for >= options_.silence_timeout) {
        on_silence(std::chrono::duration<double>(silent_for).count());
        co_return;
      }
      encode(PingFrame{++ping_nonce_}, outbuf_);
      kick_write();
    }
  }

  void on_silence(double seconds) {
    const bool first = !health_->silent.exchange(true);
    if (first) {
      spdlog::warn(
          "request plane: worker {} has not answered for {:.1f} s; failing its {} open requests "
          "(they migrate) and routing nothing new to it until it answers",
          options_.address, seconds, open_.size());
    }
    // A prober's fail_all schedules its next round itself.
    fail_all({StatusCode::kUnavailable,
              fmt::format("worker {} did not answer for {:.1f} s", options_.address, seconds)},
             false);
    if (probing_ || health_->probing.exchange(true)) return;  // this or another one probes
    probing_ = true;
    schedule_probe();
  }

  // While the worker is silent, one connection reconnects after a pause and pings; the first
  // frame heard ends the silence (read_loop), another silence starts the next round.
  void schedule_probe() {
    if (shut_) {
      probing_ = false;
      health_->probing = false;
      return;
    }
    keepalive_.expires_after(options_.ping_interval);
    keepalive_.async_wait([self = shared_from_this(), gen = generation_](error_code ec) {
      if (ec || gen != self->generation_ || self->shut_ || self->state_ != State::kIdle) return;
      if (!self->health_->silent) {  // heard from on another connection meanwhile
        self->probing_ = false;
        self->health_->probing = false;
        return;
      }
      self->start_connect();
    });
  }

  void heard() {
    last_heard_ = Clock::now();
    if (!health_->silent.load()) return;
    if (health_->silent.exchange(false)) {
      spdlog::info("request plane: worker {} answers again", options_.address);
    }
    if (probing_) {
      probing_ = false;
      health_->probing = false;
    }
  }

  asio::awaitable<void> read_loop(uint64_t gen) {
    std::string buf;
    char chunk[16384];
    while (true) {
      error_code ec;
      const size_t n = co_await socket_.async_read_some(
          asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
      if (gen != generation_) co_return;
      if (ec) {
        fail_all({StatusCode::kUnavailable,
                  "lost the connection to worker " + options_.address + ": " + ec.message()},
                 false);
        co_return;
      }
      heard();
      buf.append(chunk, n);
      // Scoped to one iteration, so that no frame lives across the co_await above: with gcc 12
      // the vector, kept alive across it, was destroyed holding garbage at co_return (valgrind:
      // uninitialised variant index; a frontend crash when a worker's connection closed).
      std::vector<Frame> frames;
      if (Status st = take_frames(buf, frames); !st.is_ok()) {
        fail_all({StatusCode::kUnavailable,
                  "bad frame from worker " + options_.address + ": " + st.message()},
                 false);
        co_return;
      }
      for (Frame& f : frames) {
        if (const auto* c = std::get_if<CloseFrame>(&f)) {
          spdlog::error("request plane: worker {} closed the connection: {}", options_.address,
                        c->status.message());
          fail_all({StatusCode::kUnavailable, "worker " + options_.address +
                                                  " closed the connection: " + c->status.message()},
                   false);
          co_return;
        }
        if (auto* e = std::get_if<EncodeResponseFrame>(&f)) {
          auto it = open_.find(e->id);
          if (it == open_.end() || !it->second.encode_cb) continue;
          encoder::EncoderCallback cb = std::move(it->second.encode_cb);
          open_.erase(it);
          (*open_count_)--;
          cb(decode_encoder_response(e->body));
          if (gen != generation_) co_return;
          continue;
        }
        auto* o = std::get_if<OutputFrame>(&f);
        if (!o) continue;  // Pong: hearing it was the point
        auto it = open_.find(o->id);
        if (it == open_.end() || !it->second.cb) continue;
        if (o->output.finish != engine::FinishReason::kNone) {
          engine::OutputCallback cb = std::move(it->second.cb);
          open_.erase(it);
          (*open_count_)--;
          cb(std::move(o->output));
        } else {
          it->second.cb(std::move(o->output));
        }
        if (gen != generation_) co_return;  // a callback shut this connection down
      }
    }
  }

  void kick_write() {
    if (writing_ || state_ != State::kOpen || outbuf_.empty()) return;
    writing_ = true;
    inflight_.swap(outbuf_);
    outbuf_.clear();
    asio::async_write(socket_, asio::buffer(inflight_),
                      asio::bind_executor(strand_, [self = shared_from_this(), gen = generation_](
                                                       error_code ec, size_t) {
                        if (gen != self->generation_) return;
                        self->writing_ = false;
                        self->inflight_.clear();
                        if (ec) {
                          self->fail_all({StatusCode::kUnavailable,
                                          "lost the connection to worker " +
                                              self->options_.address + ": " + ec.message()},
                                         false);
                          return;
                        }
                        self->kick_write();
                      }));
  }

  // Ends every open request: kCancelled if it was cancelled (or everything is shutting down),
  // else kError with `st`. The connection goes back to idle; the next request reconnects (a
  // prober of a silent worker reconnects on its own).
  void fail_all(Status st, bool as_cancelled) {
    ++generation_;
    state_ = State::kIdle;
    writing_ = false;
    outbuf_.clear();
    inflight_.clear();
    error_code ec;
    connect_timer_.cancel();
    keepalive_.cancel();
    socket_.close(ec);
    socket_ = tcp::socket(strand_);
    auto open = std::move(open_);
    open_.clear();
    if (!open.empty() && !as_cancelled) {
      spdlog::warn("request plane: {} ({} open requests)", st.message(), open.size());
    }
    for (auto& [id, o] : open) {
      (*open_count_)--;
      if (o.encode_cb) {
        // Encoder calls hold no state on the worker: kUnavailable lets a router retry them.
        o.encode_cb(Status(StatusCode::kUnavailable, st.message()));
        continue;
      }
      engine::EngineOutput out;
      if (o.cancelled || as_cancelled) {
        out.finish = engine::FinishReason::kCancelled;
      } else {
        out.finish = engine::FinishReason::kError;
        out.error = st;
      }
      o.cb(std::move(out));
    }
    if (probing_) schedule_probe();
  }

  const RemoteEngineOptions options_;
  asio::any_io_executor strand_;
  tcp::socket socket_;
  asio::steady_timer connect_timer_;
  asio::steady_timer keepalive_;  // pings while open; the pause between probes while silent
  std::shared_ptr<std::atomic<int>> open_count_;
  std::shared_ptr<Health> health_;
  State state_ = State::kIdle;
  bool shut_ = false;
  bool writing_ = false;
  bool probing_ = false;     // this connection probes the silent worker
  uint64_t generation_ = 0;  // bumped when a socket is given up; stale handlers check it
  uint64_t ping_nonce_ = 0;
  Clock::time_point last_heard_{};
  std::string outbuf_;    // frames not yet handed to the socket
  std::string inflight_;  // frames being written
  std::unordered_map<uint64_t, Open> open_;
};

RemoteEngine::RemoteEngine(RemoteEngineOptions options, asio::any_io_executor executor)
    : options_(std::move(options)),
      health_(std::make_shared<Health>()),
      open_count_(std::make_shared<std::atomic<int>>(0)) {
  const int n = std::max(1, options_.pool_size);
  for (int i = 0; i < n; ++i) {
    pool_.push_back(std::make_shared<Connection>(options_, executor, open_count_, health_));
  }
}

RemoteEngine::~RemoteEngine() {
  shutdown();
}

bool RemoteEngine::silent() const {
  return health_->silent.load();
}

Status RemoteEngine::submit(engine::EngineRequest request) {
  if (shut_down_) return {StatusCode::kUnavailable, "the remote engine was shut down"};
  if (health_->silent.load()) {
    return {StatusCode::kUnavailable,
            "worker " + options_.address + " is not answering (no pong); try another worker"};
  }
  if (request.prompt.empty()) return invalid_argument("the prompt is empty", "prompt");
  TURBINE_RETURN_IF_ERROR(request.params.validate());
  if (options_.max_context > 0 &&
      static_cast<int64_t>(request.prompt.size()) >= options_.max_context) {
    return invalid_argument("the prompt does not fit the context", "prompt");
  }
  pool_[request.id % pool_.size()]->submit(std::move(request));
  return Status::ok();
}

void RemoteEngine::encode_call(uint64_t id, const encoder::EncoderRequest& request,
                               encoder::EncoderCallback done) {
  if (shut_down_) {
    done(Status(StatusCode::kUnavailable, "the remote engine was shut down"));
    return;
  }
  if (health_->silent.load()) {
    done(Status(StatusCode::kUnavailable,
                "worker " + options_.address + " is not answering (no pong); try another worker"));
    return;
  }
  pool_[id % pool_.size()]->encode_call(id, encode_encoder_request(request), std::move(done));
}

int RemoteEngine::open_requests() const {
  return open_count_->load();
}

void RemoteEngine::cancel(uint64_t id) {
  pool_[id % pool_.size()]->cancel(id, /*stop=*/false);
}

void RemoteEngine::stop(uint64_t id) {
  pool_[id % pool_.size()]->cancel(id, /*stop=*/true);
}

void RemoteEngine::shutdown() {
  if (shut_down_.exchange(true)) return;
  for (auto& c : pool_) c->shutdown();
}

engine::EngineStats RemoteEngine::stats() const {
  engine::EngineStats s;
  s.running = open_count_->load();
  s.kv_total_blocks = static_cast<int>(options_.kv_total_blocks);
  s.kv_block_size = options_.block_size;
  return s;
}

}  // namespace turbine::runtime

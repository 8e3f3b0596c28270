#include "runtime/message_request_plane.h"

#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "runtime/component.h"
#include "runtime/wire.h"

namespace turbine::runtime {
namespace {

using Clock = std::chrono::steady_clock;

Result<Frame> decode_one(std::string_view bytes) {
  std::span<const uint8_t> buf(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  TURBINE_ASSIGN_OR_RETURN(size_t size, frame_size(buf));
  if (size == 0 || size != buf.size())
    return invalid_argument("a message must hold exactly one whole frame");
  return decode(buf);
}

std::string output_message(uint64_t id, engine::EngineOutput&& out) {
  std::string bytes;
  encode(OutputFrame{id, std::move(out)}, bytes);
  return bytes;
}

// One request's caller, called under `mu` so that nothing follows its final output.
struct Slot {
  std::mutex mu;
  engine::OutputCallback cb;
  bool closed = false;
  void deliver(engine::EngineOutput&& out) {
    std::lock_guard lock(mu);
    if (closed) return;
    if (out.finish != engine::FinishReason::kNone) closed = true;
    cb(std::move(out));
  }
};

engine::EngineOutput final_output(engine::FinishReason reason, Status error) {
  engine::EngineOutput out;
  out.finish = reason;
  out.error = std::move(error);
  return out;
}

}  // namespace

std::string encode_envelope(std::string_view reply_subject, std::string_view frame) {
  std::string out;
  out.reserve(2 + reply_subject.size() + frame.size());
  const auto n = static_cast<uint16_t>(reply_subject.size());
  out.push_back(static_cast<char>(n & 0xff));
  out.push_back(static_cast<char>(n >> 8));
  out.append(reply_subject);
  out.append(frame);
  return out;
}

Result<std::pair<std::string_view, std::string_view>> decode_envelope(std::string_view message) {
  if (message.size() < 2) return invalid_argument("request-plane message too short");
  const size_t n = static_cast<uint8_t>(message[0]) | (static_cast<uint8_t>(message[1]) << 8);
  if (n == 0 || message.size() < 2 + n)
    return invalid_argument("request-plane message without a reply subject");
  return std::make_pair(message.substr(2, n), message.substr(2 + n));
}

// ---- worker ----------------------------------------------------------------------------------

struct MessageWorkerServer::State : std::enable_shared_from_this<MessageWorkerServer::State> {
  std::shared_ptr<EventPlane> plane;
  std::string subject;
  std::shared_ptr<engine::AsyncEngine> engine;
  MessageWorkerOptions options;

  struct Open {
    std::string reply;
    uint64_t client_id = 0;
    Clock::time_point last_sent;
  };
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopped = false;
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, Open> open;                   // by engine id
  std::map<std::pair<std::string, uint64_t>, uint64_t> ids;  // (reply, client id) -> engine id
  std::unique_ptr<Subscription> sub;
  std::thread heartbeat;

  void on_message(std::string_view message) {
    auto env = decode_envelope(message);
    if (!env) return;
    auto frame = decode_one(env->second);
    if (!frame) {
      spdlog::warn("request plane: dropping a bad message on {}: {}", subject,
                   frame.status().message());
      return;
    }
    const std::string reply(env->first);
    if (auto* c = std::get_if<CancelFrame>(&*frame)) {
      uint64_t engine_id = 0;
      {
        std::lock_guard lock(mu);
        auto it = ids.find({reply, c->id});
        if (it == ids.end()) return;
        engine_id = it->second;
      }
      if (c->stop) {
        engine->stop(engine_id);
      } else {
        engine->cancel(engine_id);
      }
      return;
    }
    auto* r = std::get_if<RequestFrame>(&*frame);
    if (r == nullptr) return;
    uint64_t engine_id = 0;
    Status refused;
    {
      std::lock_guard lock(mu);
      if (stopped) {
        refused = {StatusCode::kUnavailable, "the worker is stopping"};
      } else if (!ids.emplace(std::make_pair(reply, r->id), next_id).second) {
        refused = invalid_argument("duplicate request id " + std::to_string(r->id));
      } else {
        engine_id = next_id++;
        open[engine_id] = {reply, r->id, Clock::now()};
      }
    }
    if (!refused.is_ok()) {
      plane->publish(reply, output_message(r->id, final_output(engine::FinishReason::kError,
                                                               std::move(refused))));
      return;
    }
    engine::EngineRequest er;
    er.id = engine_id;
    er.prompt = std::move(r->prompt);
    er.params = std::move(r->params);
    er.disagg = std::move(r->disagg);
    er.trace = r->trace;
    er.on_output = [w = weak_from_this(), engine_id](engine::EngineOutput&& out) {
      if (auto s = w.lock()) s->on_output(engine_id, std::move(out));
    };
    Status st = engine->submit(std::move(er));
    if (!st.is_ok()) on_output(engine_id, final_output(engine::FinishReason::kError, st));
  }

  void on_output(uint64_t engine_id, engine::EngineOutput&& out) {
    std::string reply;
    uint64_t client_id = 0;
    {
      std::lock_guard lock(mu);
      auto it = open.find(engine_id);
      if (it == open.end()) return;
      reply = it->second.reply;
      client_id = it->second.client_id;
      it->second.last_sent = Clock::now();
      if (out.finish != engine::FinishReason::kNone) {
        ids.erase({reply, client_id});
        open.erase(it);
      }
    }
    plane->publish(reply, output_message(client_id, std::move(out)));
  }

  void beat() {
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, options.heartbeat / 2, [this] { return stopped; })) {
      const auto now = Clock::now();
      std::vector<std::pair<std::string, uint64_t>> due;
      for (auto& [id, o] : open) {
        if (now - o.last_sent < options.heartbeat) continue;
        o.last_sent = now;
        due.emplace_back(o.reply, o.client_id);
      }
      lock.unlock();
      for (auto& [reply, client_id] : due)
        plane->publish(reply, output_message(client_id, engine::EngineOutput{}));
      lock.lock();
    }
  }
};

MessageWorkerServer::MessageWorkerServer(std::shared_ptr<EventPlane> plane, std::string subject,
                                         std::shared_ptr<engine::AsyncEngine> engine,
                                         MessageWorkerOptions options)
    : state_(std::make_shared<State>()) {
  state_->plane = std::move(plane);
  state_->subject = std::move(subject);
  state_->engine = std::move(engine);
  state_->options = options;
}

MessageWorkerServer::~MessageWorkerServer() {
  stop();
}

Status MessageWorkerServer::start() {
  std::weak_ptr<State> w = state_;
  TURBINE_ASSIGN_OR_RETURN(state_->sub,
                           state_->plane->subscribe(state_->subject, [w](std::string_view m) {
                             if (auto s = w.lock()) s->on_message(m);
                           }));
  state_->heartbeat = std::thread([s = state_.get()] { s->beat(); });
  return Status::ok();
}

size_t MessageWorkerServer::open_requests() const {
  std::lock_guard lock(state_->mu);
  return state_->open.size();
}

void MessageWorkerServer::stop() {
  state_->sub.reset();  // no message is handled after this
  std::vector<uint64_t> cancel;
  {
    std::lock_guard lock(state_->mu);
    state_->stopped = true;
    for (const auto& [id, o] : state_->open) cancel.push_back(id);
    state_->open.clear();
    state_->ids.clear();
  }
  state_->cv.notify_all();
  if (state_->heartbeat.joinable()) state_->heartbeat.join();
  for (uint64_t id : cancel) state_->engine->cancel(id);
}

// ---- client ----------------------------------------------------------------------------------

struct MessageRemoteEngine::State {
  std::shared_ptr<EventPlane> plane;
  std::string subject;
  std::string inbox;
  std::chrono::milliseconds silence{5000};

  struct Req {
    std::shared_ptr<Slot> slot;
    Clock::time_point last_heard;
    bool cancelled = false;
  };
  std::mutex mu;
  std::condition_variable cv;
  bool shut_down = false;
  std::unordered_map<uint64_t, Req> open;
  std::unique_ptr<Subscription> sub;
  std::thread watchdog;

  void on_reply(std::string_view message) {
    auto frame = decode_one(message);
    if (!frame) return;
    auto* o = std::get_if<OutputFrame>(&*frame);
    if (o == nullptr) return;
    const bool last = o->output.finish != engine::FinishReason::kNone;
    std::shared_ptr<Slot> slot;
    {
      std::lock_guard lock(mu);
      auto it = open.find(o->id);
      if (it == open.end()) return;
      it->second.last_heard = Clock::now();
      slot = it->second.slot;
      if (last) open.erase(it);
    }
    if (!last && o->output.tokens.empty()) return;  // a heartbeat
    slot->deliver(std::move(o->output));
  }

  void send_cancel(uint64_t id, bool stop = false) {
    std::string frame;
    encode(CancelFrame{id, stop}, frame);
    plane->publish(subject, encode_envelope(inbox, frame));
  }

  void watch() {
    std::unique_lock lock(mu);
    const auto tick = std::max(std::chrono::milliseconds(10), silence / 4);
    while (!cv.wait_for(lock, tick, [this] { return shut_down; })) {
      const auto now = Clock::now();
      std::vector<std::pair<uint64_t, Req>> lost;
      for (auto it = open.begin(); it != open.end();) {
        if (now - it->second.last_heard > silence) {
          lost.emplace_back(it->first, std::move(it->second));
          it = open.erase(it);
        } else {
          ++it;
        }
      }
      lock.unlock();
      for (auto& [id, r] : lost) {
        send_cancel(id);
        if (r.cancelled) {
          r.slot->deliver(final_output(engine::FinishReason::kCancelled, Status::ok()));
        } else {
          r.slot->deliver(final_output(
              engine::FinishReason::kError,
              {StatusCode::kUnavailable, "the worker on " + subject + " went silent"}));
        }
      }
      lock.lock();
    }
  }
};

MessageRemoteEngine::MessageRemoteEngine(std::shared_ptr<EventPlane> plane,
                                         MessageRemoteOptions options)
    : options_(std::move(options)), state_(std::make_shared<State>()) {
  state_->plane = std::move(plane);
  state_->subject = options_.subject;
  state_->silence = options_.silence_timeout;
  std::random_device rd;
  state_->inbox = inbox_subject(options_.ns, (static_cast<uint64_t>(rd()) << 32) ^ rd());
  std::weak_ptr<State> w = state_;
  auto sub = state_->plane->subscribe(state_->inbox, [w](std::string_view m) {
    if (auto s = w.lock()) s->on_reply(m);
  });
  if (!sub) {
    status_ = sub.status();
    state_->shut_down = true;
    return;
  }
  state_->sub = std::move(*sub);
  state_->watchdog = std::thread([s = state_.get()] { s->watch(); });
}

MessageRemoteEngine::~MessageRemoteEngine() {
  shutdown();
  state_->sub.reset();
  if (state_->watchdog.joinable()) state_->watchdog.join();
}

Status MessageRemoteEngine::submit(engine::EngineRequest request) {
  if (request.prompt.empty()) return invalid_argument("the prompt is empty", "prompt");
  TURBINE_RETURN_IF_ERROR(request.params.validate());
  if (options_.max_context > 0 &&
      static_cast<int64_t>(request.prompt.size()) >= options_.max_context) {
    return invalid_argument("the prompt does not fit the context", "prompt");
  }
  auto slot = std::make_shared<Slot>();
  slot->cb = std::move(request.on_output);
  {
    std::lock_guard lock(state_->mu);
    if (state_->shut_down) return {StatusCode::kUnavailable, "the remote engine was shut down"};
    if (!state_->open.emplace(request.id, State::Req{slot, Clock::now(), false}).second)
      return invalid_argument("duplicate request id " + std::to_string(request.id));
  }
  std::string frame;
  RequestFrame rf;
  rf.id = request.id;
  rf.prompt = std::move(request.prompt);
  rf.params = std::move(request.params);
  rf.disagg = std::move(request.disagg);
  rf.trace = request.trace;
  encode(rf, frame);
  state_->plane->publish(state_->subject, encode_envelope(state_->inbox, frame));
  return Status::ok();
}

void MessageRemoteEngine::cancel(uint64_t id) {
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->open.find(id);
    if (it == state_->open.end()) return;
    it->second.cancelled = true;
  }
  state_->send_cancel(id);
}

void MessageRemoteEngine::stop(uint64_t id) {
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->open.find(id);
    if (it == state_->open.end()) return;
    it->second.cancelled = true;
  }
  state_->send_cancel(id, /*stop=*/true);
}

void MessageRemoteEngine::shutdown() {
  std::unordered_map<uint64_t, State::Req> open;
  {
    std::lock_guard lock(state_->mu);
    state_->shut_down = true;
    open.swap(state_->open);
  }
  state_->cv.notify_all();
  for (auto& [id, r] : open) {
    state_->send_cancel(id);
    r.slot->deliver(final_output(engine::FinishReason::kCancelled, Status::ok()));
  }
}

engine::EngineStats MessageRemoteEngine::stats() const {
  engine::EngineStats s;
  {
    std::lock_guard lock(state_->mu);
    s.running = static_cast<int>(state_->open.size());
  }
  s.kv_total_blocks = static_cast<int>(options_.kv_total_blocks);
  s.kv_block_size = options_.block_size;
  return s;
}

}  // namespace turbine::runtime

#include "runtime/event_plane.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>

#include <spdlog/spdlog.h>

#ifdef TURBINE_HAVE_NATS
#include <nats/nats.h>
#endif

#include "runtime/wire.h"

namespace turbine::runtime {

void EventPlaneKvSink::publish(kv::KvEvent event) {
  plane_->publish(subject_, kv_event_to_json(instance_id_, event));
}

// ---- memory ----------------------------------------------------------------------------------

struct MemoryEventPlane::State {
  std::mutex mu;  // guards subs and serialises delivery (callbacks run under it)
  std::map<uint64_t, std::pair<std::string, MessageCallback>> subs;
  uint64_t next = 0;
};

namespace {
class MemorySubscription final : public Subscription {
 public:
  MemorySubscription(std::shared_ptr<MemoryEventPlane::State> s, uint64_t id)
      : state_(std::move(s)), id_(id) {}
  ~MemorySubscription() override {
    std::lock_guard lock(state_->mu);
    state_->subs.erase(id_);
  }

 private:
  std::shared_ptr<MemoryEventPlane::State> state_;
  uint64_t id_;
};
}  // namespace

MemoryEventPlane::MemoryEventPlane() : state_(std::make_shared<State>()) {}
MemoryEventPlane::~MemoryEventPlane() = default;

void MemoryEventPlane::publish(const std::string& subject, std::string_view payload) {
  std::lock_guard lock(state_->mu);
  for (const auto& [id, sub] : state_->subs) {
    if (sub.first == subject) sub.second(payload);
  }
}

Result<std::unique_ptr<Subscription>> MemoryEventPlane::subscribe(const std::string& subject,
                                                                  MessageCallback cb) {
  std::lock_guard lock(state_->mu);
  const uint64_t id = ++state_->next;
  state_->subs[id] = {subject, std::move(cb)};
  return std::unique_ptr<Subscription>(std::make_unique<MemorySubscription>(state_, id));
}

// ---- NATS ------------------------------------------------------------------------------------

#ifdef TURBINE_HAVE_NATS
namespace {

Status nats_error(const char* what, natsStatus s) {
  return {StatusCode::kUnavailable, std::string(what) + ": " + natsStatus_GetText(s)};
}

class NatsSubscription final : public Subscription {
 public:
  NatsSubscription(natsSubscription* sub, std::unique_ptr<MessageCallback> cb)
      : sub_(sub), cb_(std::move(cb)) {}
  ~NatsSubscription() override {
    // Drain (when connected) waits until the callback is not running and will not run again.
    if (natsSubscription_Drain(sub_) == NATS_OK) {
      natsSubscription_WaitForDrainCompletion(sub_, 2000);
    } else {
      natsSubscription_Unsubscribe(sub_);
    }
    natsSubscription_Destroy(sub_);
  }
  static void on_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* cb = static_cast<MessageCallback*>(closure);
    (*cb)(std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))));
    natsMsg_Destroy(msg);
  }

 private:
  natsSubscription* sub_;
  std::unique_ptr<MessageCallback> cb_;
};

// Set by the connection's closed callback: libnats runs the disconnected and closed callbacks
// on its own thread after natsConnection_Close returns, so the plane waits for the last one
// before it goes (a callback still logging while the process exits crashed a worker).
struct CloseSignal {
  std::mutex mu;
  std::condition_variable cv;
  bool closed = false;
  static void on_closed(natsConnection*, void* closure) {
    auto* self = static_cast<CloseSignal*>(closure);
    std::lock_guard lock(self->mu);
    self->closed = true;
    self->cv.notify_all();
  }
};

class NatsEventPlane final : public EventPlane {
 public:
  NatsEventPlane(natsConnection* conn, std::unique_ptr<CloseSignal> close_signal)
      : conn_(conn), close_signal_(std::move(close_signal)) {}
  ~NatsEventPlane() override {
    natsConnection_FlushTimeout(conn_, 500);
    natsConnection_Close(conn_);
    {
      std::unique_lock lock(close_signal_->mu);
      close_signal_->cv.wait_for(lock, std::chrono::seconds(2),
                                 [&] { return close_signal_->closed; });
    }
    natsConnection_Destroy(conn_);
  }
  void publish(const std::string& subject, std::string_view payload) override {
    const natsStatus s = natsConnection_Publish(conn_, subject.c_str(), payload.data(),
                                                static_cast<int>(payload.size()));
    if (s != NATS_OK && !warned_.exchange(true)) {
      spdlog::warn("event plane: cannot publish on {}: {} (dropping until NATS is back)", subject,
                   natsStatus_GetText(s));
    } else if (s == NATS_OK) {
      warned_ = false;
    }
  }
  Result<std::unique_ptr<Subscription>> subscribe(const std::string& subject,
                                                  MessageCallback cb) override {
    auto holder = std::make_unique<MessageCallback>(std::move(cb));
    natsSubscription* sub = nullptr;
    const natsStatus s = natsConnection_Subscribe(&sub, conn_, subject.c_str(),
                                                  &NatsSubscription::on_msg, holder.get());
    if (s != NATS_OK) return nats_error("NATS subscribe", s);
    return std::unique_ptr<Subscription>(
        std::make_unique<NatsSubscription>(sub, std::move(holder)));
  }

 private:
  natsConnection* conn_;
  std::unique_ptr<CloseSignal> close_signal_;
  std::atomic<bool> warned_{false};
};

void on_disconnected(natsConnection*, void*) {
  spdlog::warn("event plane: NATS disconnected");
}
void on_reconnected(natsConnection*, void*) {
  spdlog::info("event plane: NATS reconnected");
}
// With a callback, a first connect that fails returns at once and retries in the background
// (without one, natsConnection_Connect would block until it connects).
void on_connected(natsConnection*, void*) {
  spdlog::info("event plane: NATS connected");
}

}  // namespace

Result<std::unique_ptr<EventPlane>> make_nats_event_plane(const NatsOptions& o) {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s != NATS_OK) return nats_error("NATS options", s);
  struct Free {
    natsOptions* o;
    ~Free() { natsOptions_Destroy(o); }
  } free_opts{opts};
  auto close_signal = std::make_unique<CloseSignal>();
  // Every URL of the list; reconnect forever, also when nothing answers at start.
  std::vector<std::string> urls;
  std::vector<const char*> ptrs;
  size_t start = 0;
  while (start <= o.url.size()) {
    size_t comma = o.url.find(',', start);
    if (comma == std::string::npos) comma = o.url.size();
    if (comma > start) urls.push_back(o.url.substr(start, comma - start));
    start = comma + 1;
  }
  for (const auto& u : urls) ptrs.push_back(u.c_str());
  if (ptrs.empty()) return invalid_argument("no NATS URL", "nats_url");
  if ((s = natsOptions_SetServers(opts, ptrs.data(), static_cast<int>(ptrs.size()))) != NATS_OK ||
      (s = natsOptions_SetAllowReconnect(opts, true)) != NATS_OK ||
      (s = natsOptions_SetMaxReconnect(opts, -1)) != NATS_OK ||
      (s = natsOptions_SetReconnectWait(opts, 500)) != NATS_OK ||
      (s = natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, nullptr)) != NATS_OK ||
      (s = natsOptions_SetDisconnectedCB(opts, on_disconnected, nullptr)) != NATS_OK ||
      (s = natsOptions_SetReconnectedCB(opts, on_reconnected, nullptr)) != NATS_OK ||
      (s = natsOptions_SetClosedCB(opts, &CloseSignal::on_closed, close_signal.get())) != NATS_OK) {
    return nats_error("NATS options", s);
  }
  if (!o.user.empty() &&
      (s = natsOptions_SetUserInfo(opts, o.user.c_str(), o.password.c_str())) != NATS_OK)
    return nats_error("NATS user", s);
  if (!o.token.empty() && (s = natsOptions_SetToken(opts, o.token.c_str())) != NATS_OK)
    return nats_error("NATS token", s);
  if (!o.creds_file.empty() &&
      (s = natsOptions_SetUserCredentialsFromFiles(opts, o.creds_file.c_str(), nullptr)) != NATS_OK)
    return nats_error("NATS credentials", s);
  if (!o.ca_file.empty() &&
      ((s = natsOptions_SetSecure(opts, true)) != NATS_OK ||
       (s = natsOptions_LoadCATrustedCertificates(opts, o.ca_file.c_str())) != NATS_OK))
    return nats_error("NATS TLS", s);
  natsConnection* conn = nullptr;
  s = natsConnection_Connect(&conn, opts);
  if (s == NATS_NOT_YET_CONNECTED) {
    spdlog::warn("event plane: NATS at {} is not reachable yet; retrying in the background", o.url);
  } else if (s != NATS_OK) {
    return nats_error("NATS connect", s);
  }
  return std::unique_ptr<EventPlane>(
      std::make_unique<NatsEventPlane>(conn, std::move(close_signal)));
}
#else
Result<std::unique_ptr<EventPlane>> make_nats_event_plane(const NatsOptions&) {
  return unimplemented("this build has no NATS support (libnats-dev)");
}
#endif

}  // namespace turbine::runtime

// The event plane: fire-and-forget messages on subjects (runtime/component.h builds them):
// workers publish KV events and load; frontends subscribe and feed their routers.
//
// NatsEventPlane (libnats core NATS): reconnects forever in the background, also when the server
// is down at start; messages published while disconnected are buffered by libnats up to its
// reconnect buffer and dropped beyond it, which routing survives (the router falls back to
// load-only scores for lost blocks; KvIndexer counts the event-id gap). MemoryEventPlane: one
// process, delivery on the publisher's thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "kv/protocol.h"

namespace turbine::runtime {

using MessageCallback = std::function<void(std::string_view payload)>;

// Stops its subscription when destroyed; no callback runs after the destructor returns.
class Subscription {
 public:
  virtual ~Subscription() = default;
};

class EventPlane {
 public:
  virtual ~EventPlane() = default;
  // Never blocks on the network; any thread.
  virtual void publish(const std::string& subject, std::string_view payload) = 0;
  // Callbacks of one subscription run one at a time, on a thread of the implementation.
  virtual Result<std::unique_ptr<Subscription>> subscribe(const std::string& subject,
                                                          MessageCallback cb) = 0;
};

class MemoryEventPlane final : public EventPlane {
 public:
  MemoryEventPlane();
  ~MemoryEventPlane() override;
  void publish(const std::string& subject, std::string_view payload) override;
  Result<std::unique_ptr<Subscription>> subscribe(const std::string& subject,
                                                  MessageCallback cb) override;
  struct State;

 private:
  std::shared_ptr<State> state_;
};

struct NatsOptions {
  std::string url = "nats://127.0.0.1:4222";  // comma-separated list allowed
  std::string user;
  std::string password;
  std::string token;
  std::string creds_file;
  std::string ca_file;  // TLS
};

// Unimplemented when built without libnats.
Result<std::unique_ptr<EventPlane>> make_nats_event_plane(const NatsOptions& options);

// A KvEventSink that publishes a worker's events (JSON, runtime/wire.h) on a subject.
class EventPlaneKvSink final : public kv::KvEventSink {
 public:
  EventPlaneKvSink(std::shared_ptr<EventPlane> plane, std::string subject, uint64_t instance_id)
      : plane_(std::move(plane)), subject_(std::move(subject)), instance_id_(instance_id) {}
  void publish(kv::KvEvent event) override;

 private:
  std::shared_ptr<EventPlane> plane_;
  std::string subject_;
  uint64_t instance_id_;
};

}  // namespace turbine::runtime

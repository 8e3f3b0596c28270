// The request plane over a message bus (NATS request/reply; `--request-plane nats`), on the
// EventPlane interface so the same code runs on NATS and, in tests, on MemoryEventPlane.
//
// A worker (MessageWorkerServer) subscribes to its request subject
// ({ns}.{component}.{endpoint}.{instance:x}, runtime/component.h). A client (MessageRemoteEngine)
// subscribes to an inbox of its own (_INBOX.{ns}.{nonce:x}) and sends each request there as an
// envelope: u16 LE reply-subject length, the reply subject, then one runtime/wire.h frame
// (RequestFrame or CancelFrame, length prefix included). The worker streams the request's
// OutputFrames to that reply subject; a cancel is a CancelFrame sent the same way. Requests are
// keyed by (reply subject, id), so ids need only be unique per client.
//
// Liveness: a bus has no connection to break when a worker dies, so the worker sends an empty
// OutputFrame (no tokens, not final) for every open request that has been silent for
// `heartbeat`, and the client ends a request that has heard nothing for `silence_timeout` with
// kError/kUnavailable (what the router migrates), like a broken TCP connection.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "engine/async_engine.h"
#include "runtime/event_plane.h"

namespace turbine::runtime {

// Envelope of a client -> worker message.
std::string encode_envelope(std::string_view reply_subject, std::string_view frame);
// The reply subject and the frame (a view into `message`).
Result<std::pair<std::string_view, std::string_view>> decode_envelope(std::string_view message);

struct MessageWorkerOptions {
  std::chrono::milliseconds heartbeat{1000};
};

class MessageWorkerServer {
 public:
  MessageWorkerServer(std::shared_ptr<EventPlane> plane, std::string subject,
                      std::shared_ptr<engine::AsyncEngine> engine,
                      MessageWorkerOptions options = {});
  ~MessageWorkerServer();  // stop()
  MessageWorkerServer(const MessageWorkerServer&) = delete;
  MessageWorkerServer& operator=(const MessageWorkerServer&) = delete;

  Status start();  // subscribes
  size_t open_requests() const;
  // Unsubscribes, cancels what is open (nothing more is sent) and stops the heartbeat.
  void stop();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

struct MessageRemoteOptions {
  std::string subject;  // the worker's request subject
  std::string ns;       // for the inbox name
  std::chrono::milliseconds silence_timeout{5000};
  // What the worker's model card says (as RemoteEngineOptions).
  int max_context = 0;
  int block_size = 0;
  int num_slots = 0;
  int64_t kv_total_blocks = 0;
};

class MessageRemoteEngine final : public engine::AsyncEngine {
 public:
  // Subscribes to its inbox; check ok() afterwards.
  MessageRemoteEngine(std::shared_ptr<EventPlane> plane, MessageRemoteOptions options);
  ~MessageRemoteEngine() override;  // shutdown()
  Status status() const { return status_; }

  Status submit(engine::EngineRequest request) override;
  void cancel(uint64_t id) override;
  void stop(uint64_t id) override;
  // Open requests end with kCancelled; later submits are refused.
  void shutdown() override;
  engine::EngineStats stats() const override;
  int max_context() const override { return options_.max_context; }
  int num_slots() const override { return options_.num_slots; }
  int block_size() const override { return options_.block_size; }

  struct State;

 private:
  const MessageRemoteOptions options_;
  std::shared_ptr<State> state_;
  Status status_;
};

}  // namespace turbine::runtime

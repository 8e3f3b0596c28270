// The engine call: a request's choices submitted to an AsyncEngine, their outputs brought back to
// the request's strand, and the per-model serving metrics that hang off that (queued, time to
// first token, inter-token latency).
//
// Threads: created, used and destroyed on the request's strand. The engine calls back on its own
// threads; those callbacks only post into the Mailbox (mailbox.h). Destroying an EngineCall
// cancels every choice still open, so no exit path (client gone, server stopping) leaks an engine
// request.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/status.h"
#include "common/trace.h"
#include "engine/async_engine.h"
#include "frontend/mailbox.h"
#include "frontend/preprocessor.h"
#include "metrics/metrics.h"

namespace turbine::frontend {

class EngineCall {
 public:
  // `next_id` numbers engine requests (unique per engine among live requests).
  EngineCall(engine::AsyncEngine& engine, metrics::ModelMetrics& metrics,
             boost::asio::any_io_executor strand, std::atomic<uint64_t>& next_id);
  ~EngineCall();
  EngineCall(const EngineCall&) = delete;
  EngineCall& operator=(const EngineCall&) = delete;

  // Submits every choice (indices 0..n-1, each once). On an error the choices already submitted
  // are cancelled and the error is returned (429 queue full, 503 shutting down, 400 bad ids).
  Status submit(std::span<const PreparedChoice> choices, uint64_t worker_instance_id,
                const trace::TraceContext& trace);

  // The outputs delivered since the last call, waiting for at least one. Empty: the call was
  // closed (close()) and nothing more will come.
  boost::asio::awaitable<std::deque<MailItem>> next();

  // A callback that wakes next() with nothing (the client went away). It may outlive this
  // EngineCall and the mailbox (a weak reference: whoever waits in next() owns the call, so a
  // mailbox that is gone has no waiter, and no timer outlives its io_context). Call it on the
  // strand (on_disconnect callbacks).
  std::function<void()> closer() const {
    return [weak = std::weak_ptr<Mailbox>(mailbox_)] {
      if (auto mailbox = weak.lock()) mailbox->close();
    };
  }

  // The choice got its final output: nothing to cancel any more.
  void finished(int index);
  // Stops one choice (a stop string completed) / every choice still open (client gone).
  void cancel(int index);
  // A stop string matched in the choice's text: ends it as finished (AsyncEngine::stop), not as a
  // cancellation.
  void stop(int index);
  void cancel_open();
  // Choices submitted and not finished or cancelled.
  size_t open() const { return open_; }

 private:
  struct Slot {
    uint64_t engine_id = 0;
    bool open = false;
  };
  void observe_tokens(const std::deque<MailItem>& items);

  engine::AsyncEngine& engine_;
  metrics::ModelMetrics& metrics_;
  std::atomic<uint64_t>& next_id_;
  std::shared_ptr<Mailbox> mailbox_;
  std::vector<Slot> slots_;  // by choice index
  size_t open_ = 0;
  bool queued_ = false;  // counted in the queued gauge until the first token
  std::chrono::steady_clock::time_point submitted_at_;
  std::optional<std::chrono::steady_clock::time_point> last_token_at_;
};

}  // namespace turbine::frontend

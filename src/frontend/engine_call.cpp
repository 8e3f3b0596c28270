#include "frontend/engine_call.h"

namespace turbine::frontend {

using Clock = std::chrono::steady_clock;

EngineCall::EngineCall(engine::AsyncEngine& engine, metrics::ModelMetrics& metrics,
                       boost::asio::any_io_executor strand, std::atomic<uint64_t>& next_id)
    : engine_(engine),
      metrics_(metrics),
      next_id_(next_id),
      mailbox_(std::make_shared<Mailbox>(std::move(strand))) {}

EngineCall::~EngineCall() {
  cancel_open();
  if (queued_) metrics_.queued.Decrement();
}

Status EngineCall::submit(std::span<const PreparedChoice> choices, uint64_t worker_instance_id,
                          const trace::TraceContext& trace) {
  slots_.assign(choices.size(), Slot{});
  submitted_at_ = Clock::now();
  for (const PreparedChoice& c : choices) {
    if (c.index < 0 || static_cast<size_t>(c.index) >= slots_.size() ||
        slots_[static_cast<size_t>(c.index)].engine_id != 0) {
      cancel_open();
      return internal_error("choice indices must be 0..n-1, each once");
    }
    Slot& slot = slots_[static_cast<size_t>(c.index)];
    slot.engine_id = next_id_.fetch_add(1);
    engine::EngineRequest er;
    er.id = slot.engine_id;
    er.prompt = *c.prompt;
    er.params = c.params;
    er.routing.instance_id = worker_instance_id;
    er.trace = trace;
    // A weak reference: the engine may keep a finished request's callback after the request's
    // coroutine (and the io_context its mailbox's timer belongs to) is gone.
    er.on_output = [weak = std::weak_ptr<Mailbox>(mailbox_),
                    index = c.index](engine::EngineOutput&& out) {
      if (auto mailbox = weak.lock()) mailbox->deliver(index, std::move(out));
    };
    Status st = engine_.submit(std::move(er));
    if (!st.is_ok()) {
      cancel_open();
      return st;
    }
    slot.open = true;
    ++open_;
  }
  metrics_.queued.Increment();
  queued_ = true;
  return Status::ok();
}

boost::asio::awaitable<std::deque<MailItem>> EngineCall::next() {
  std::deque<MailItem> items = co_await mailbox_->next();
  observe_tokens(items);
  co_return items;
}

void EngineCall::observe_tokens(const std::deque<MailItem>& items) {
  for (const MailItem& item : items) {
    if (item.output.tokens.empty()) continue;
    const auto now = Clock::now();
    if (!last_token_at_) {
      metrics_.time_to_first_token.Observe(
          std::chrono::duration<double>(now - submitted_at_).count());
      if (queued_) {
        metrics_.queued.Decrement();
        queued_ = false;
      }
    } else {
      metrics_.inter_token_latency.Observe(
          std::chrono::duration<double>(now - *last_token_at_).count() /
          static_cast<double>(item.output.tokens.size()));
    }
    last_token_at_ = now;
  }
}

void EngineCall::finished(int index) {
  if (index < 0 || static_cast<size_t>(index) >= slots_.size()) return;
  Slot& slot = slots_[static_cast<size_t>(index)];
  if (!slot.open) return;
  slot.open = false;
  --open_;
}

void EngineCall::cancel(int index) {
  if (index < 0 || static_cast<size_t>(index) >= slots_.size()) return;
  Slot& slot = slots_[static_cast<size_t>(index)];
  if (!slot.open) return;
  engine_.cancel(slot.engine_id);
  slot.open = false;
  --open_;
}

void EngineCall::stop(int index) {
  if (index < 0 || static_cast<size_t>(index) >= slots_.size()) return;
  Slot& slot = slots_[static_cast<size_t>(index)];
  if (!slot.open) return;
  engine_.stop(slot.engine_id);  // finished by a stop string: not counted as cancelled
  slot.open = false;
  --open_;
}

void EngineCall::cancel_open() {
  for (size_t i = 0; i < slots_.size(); ++i) cancel(static_cast<int>(i));
}

}  // namespace turbine::frontend

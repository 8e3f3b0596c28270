#include "serving/connectors.h"

#include <unordered_map>

#include "runtime/message_request_plane.h"
#include "runtime/request_plane.h"

namespace turbine::serving {

using runtime::hex_id;

TcpConnector::TcpConnector(int pool_size, int n_threads, runtime::RemoteEngineOptions base)
    : pool_size_(pool_size), base_(std::move(base)), io_(n_threads) {}

TcpConnector::~TcpConnector() {
  io_.stop();
}

Result<std::shared_ptr<engine::AsyncEngine>> TcpConnector::connect(const ParsedKey& /*instance*/,
                                                                   const ModelCard& card) {
  TURBINE_RETURN_IF_ERROR(runtime::split_host_port(card.address).status());
  runtime::RemoteEngineOptions ro = base_;
  ro.address = card.address;
  ro.pool_size = pool_size_;
  ro.max_context = static_cast<int>(card.context_length);
  ro.block_size = card.block_size;
  ro.num_slots = card.max_num_seqs;
  ro.kv_total_blocks = card.kv_total_blocks;
  return std::shared_ptr<engine::AsyncEngine>(
      std::make_shared<runtime::RemoteEngine>(ro, io_.executor()));
}

Result<std::shared_ptr<engine::AsyncEngine>> MessageConnector::connect(const ParsedKey& instance,
                                                                       const ModelCard& card) {
  runtime::MessageRemoteOptions o;
  o.subject = runtime::request_subject(instance.endpoint, instance.instance_id);
  o.ns = instance.endpoint.ns;
  o.silence_timeout = silence_timeout_;
  o.max_context = static_cast<int>(card.context_length);
  o.block_size = card.block_size;
  o.num_slots = card.max_num_seqs;
  o.kv_total_blocks = card.kv_total_blocks;
  auto e = std::make_shared<runtime::MessageRemoteEngine>(plane_, o);
  TURBINE_RETURN_IF_ERROR(e->status());
  return std::shared_ptr<engine::AsyncEngine>(std::move(e));
}

// One request through a link: its caller's callback, called under `mu` so that sever() and the
// engine's outputs reach the caller one at a time and nothing follows a final output.
struct LinkSlot {
  std::mutex mu;
  engine::OutputCallback cb;
  bool closed = false;
};

// A link's open requests; shared with the engine's callbacks, which may outlive the link.
struct LinkState {
  std::mutex mu;
  bool closed = false;
  std::unordered_map<uint64_t, std::shared_ptr<LinkSlot>> open;

  void forget(uint64_t id, const std::shared_ptr<LinkSlot>& slot) {
    std::lock_guard lock(mu);
    auto it = open.find(id);
    if (it != open.end() && it->second == slot) open.erase(it);
  }
};

class InProcessConnector::Link final : public engine::AsyncEngine {
 public:
  explicit Link(std::shared_ptr<engine::AsyncEngine> engine)
      : engine_(std::move(engine)), state_(std::make_shared<LinkState>()) {}

  Status submit(engine::EngineRequest request) override {
    auto slot = std::make_shared<LinkSlot>();
    slot->cb = std::move(request.on_output);
    const uint64_t id = request.id;
    {
      std::lock_guard lock(state_->mu);
      if (state_->closed) return {StatusCode::kUnavailable, "the worker is gone"};
      if (!state_->open.emplace(id, slot).second)
        return invalid_argument("duplicate request id " + std::to_string(id));
    }
    request.on_output = [state = state_, id, slot](engine::EngineOutput&& out) {
      const bool last = out.finish != engine::FinishReason::kNone;
      {
        std::lock_guard slock(slot->mu);
        if (slot->closed) return;
        if (last) slot->closed = true;
        slot->cb(std::move(out));
      }
      if (last) state->forget(id, slot);
    };
    Status st = engine_->submit(std::move(request));
    if (!st.is_ok()) state_->forget(id, slot);
    return st;
  }

  void cancel(uint64_t id) override { engine_->cancel(id); }
  void stop(uint64_t id) override { engine_->stop(id); }
  void shutdown() override { close(Status::ok()); }
  engine::EngineStats stats() const override { return engine_->stats(); }
  int max_context() const override { return engine_->max_context(); }
  int num_slots() const override { return engine_->num_slots(); }
  int block_size() const override { return engine_->block_size(); }

  // Refuses new requests; with an error, also ends the open ones with it (and cancels them on
  // the engine, whose outputs for them are dropped from now on).
  void close(Status error) {
    std::unordered_map<uint64_t, std::shared_ptr<LinkSlot>> open;
    {
      std::lock_guard lock(state_->mu);
      state_->closed = true;
      if (error.is_ok()) return;
      open.swap(state_->open);
    }
    for (auto& [id, slot] : open) {
      {
        std::lock_guard slock(slot->mu);
        if (slot->closed) continue;
        slot->closed = true;
        engine::EngineOutput out;
        out.finish = engine::FinishReason::kError;
        out.error = error;
        slot->cb(std::move(out));
      }
      engine_->cancel(id);
    }
  }

 private:
  const std::shared_ptr<engine::AsyncEngine> engine_;
  const std::shared_ptr<LinkState> state_;
};

void InProcessConnector::add(uint64_t instance_id, std::shared_ptr<engine::AsyncEngine> engine) {
  std::lock_guard lock(mu_);
  entries_[instance_id].engine = std::move(engine);
}

void InProcessConnector::sever(uint64_t instance_id) {
  std::vector<std::shared_ptr<Link>> links;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(instance_id);
    if (it == entries_.end()) return;
    for (auto& w : it->second.links) {
      if (auto l = w.lock()) links.push_back(std::move(l));
    }
    entries_.erase(it);
  }
  for (auto& l : links) l->close({StatusCode::kUnavailable, "lost the connection to the worker"});
}

Result<std::shared_ptr<engine::AsyncEngine>> InProcessConnector::connect(
    const ParsedKey& instance, const ModelCard& /*card*/) {
  const uint64_t instance_id = instance.instance_id;
  std::lock_guard lock(mu_);
  auto it = entries_.find(instance_id);
  if (it == entries_.end())
    return not_found("no in-process engine for instance " + hex_id(instance_id));
  auto link = std::make_shared<Link>(it->second.engine);
  std::erase_if(it->second.links, [](const std::weak_ptr<Link>& w) { return w.expired(); });
  it->second.links.push_back(link);
  return std::shared_ptr<engine::AsyncEngine>(std::move(link));
}

}  // namespace turbine::serving

// Engine: disaggregated serving (engine/kv_transfer.h). The prefill side's transfer table
// (pin, read, release, TTL) and the decode side's import state machine (begin, fetch or device
// copy, the modelled link, completion or fallback to local prefill).
#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "engine/engine.h"
#include "engine/engine_sequence.h"

namespace turbine::engine {

void Engine::read_transfer(uint64_t transfer_id, int first_block, int n_blocks,
                           KvBytesCallback done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      source_ops_.push_back({transfer_id, first_block, n_blocks, std::move(done)});
      done = nullptr;
    }
  }
  if (done) {
    done(Status{StatusCode::kUnavailable, "the prefill engine is shutting down"});
    return;
  }
  cv_.notify_one();
}

void Engine::release_transfer(uint64_t transfer_id) {
  {
    std::lock_guard lock(mu_);
    source_ops_.push_back({transfer_id, 0, 0, nullptr});
  }
  cv_.notify_one();
}

std::optional<Engine::Clock::time_point> Engine::next_deadline() const {
  std::optional<Clock::time_point> d;
  auto take = [&](Clock::time_point t) {
    if (!d || t < *d) d = t;
  };
  for (const auto& s : fetching_) take(s->fetch_answered ? s->link_arrives : s->fetch_deadline);
  if (auto e = transfers_.next_expiry()) take(*e);
  // Offload copies in flight are polled, not signalled: look again in a millisecond.
  if (!offloads_.empty()) take(Clock::now() + std::chrono::milliseconds(1));
  return d;
}

// Transfers past their TTL; imports whose blocks arrived over the modelled link; fetches whose
// source did not answer in time.
void Engine::expire(Clock::time_point now) {
  stats_.kv_transfers_expired += static_cast<uint64_t>(transfers_.expire(now));
  for (size_t i = 0; i < fetching_.size();) {
    const Sequence& f = *fetching_[i];
    const bool arrived = f.fetch_answered && f.link_arrives <= now;
    const bool timed_out = !f.fetch_answered && f.fetch_deadline <= now;
    if (!arrived && !timed_out) {
      ++i;
      continue;
    }
    std::unique_ptr<Sequence> s = std::move(fetching_[i]);
    fetching_.erase(fetching_.begin() + static_cast<ptrdiff_t>(i));
    if (s->tier_load_id != 0 && arrived) {
      const bool ok = s->tier_ok;  // read before the move: argument order is unspecified
      finish_tier_load(std::move(s), ok);
    } else if (s->tier_load_id != 0) {
      tier_load_failed(std::move(s), {StatusCode::kUnavailable, "KV tier load timed out"});
    } else if (arrived) {
      finish_import(std::move(s), false);
    } else {
      fall_back(std::move(s), {StatusCode::kUnavailable, "KV fetch timed out"});
    }
  }
}

void Engine::run_source_op(SourceOp& op) {
  if (!op.done) return transfers_.release(op.transfer_id);
  auto ids = transfers_.block_ids(op.transfer_id, op.first_block, op.n_blocks);
  if (!ids) return op.done(ids.status());
  std::string bytes;
  Status st = backend_->read_kv_blocks(*ids, bytes);
  if (!st.is_ok()) {
    op.done(std::move(st));
    return;
  }
  op.done(std::move(bytes));
}

std::shared_ptr<const KvTransferMeta> Engine::pin_transfer(Sequence& s) {
  if (!kv_layout_.exportable() || s.n_computed <= 0) return nullptr;
  auto meta = std::make_shared<KvTransferMeta>();
  meta->instance_id = options_.instance_id;
  meta->layout = kv_layout_;
  meta->num_tokens = s.n_computed;
  const size_t n_blocks = static_cast<size_t>((s.n_computed + block_size_ - 1) / block_size_);
  const size_t n_full = static_cast<size_t>(s.n_computed / block_size_);
  kv::extend_block_hashes(s.hashes, s.tokens, block_size_);
  if (s.blocks.size() < n_blocks || s.hashes.sequence.size() < n_full) return nullptr;
  meta->block_ids.assign(s.block_ids.begin(),
                         s.block_ids.begin() + static_cast<ptrdiff_t>(n_blocks));
  meta->block_hashes.assign(s.hashes.sequence.begin(),
                            s.hashes.sequence.begin() + static_cast<ptrdiff_t>(n_full));
  meta->device_pool = kv_pool_;
  std::vector<kv::BlockRef> pinned;
  for (size_t i = 0; i < n_blocks; ++i) pinned.push_back(std::move(s.blocks[i]));
  meta->transfer_id = transfers_.pin(std::move(pinned), Clock::now() + options_.kv_transfer_ttl);
  // The sequence's remaining handles (none in practice) are freed with it.
  return meta;
}

Engine::ImportStart Engine::begin_import(Sequence& s) {
  const KvTransferMeta& m = *s.req.disagg.import;
  const int bs = block_size_;
  const size_t n_full = static_cast<size_t>(m.num_tokens / std::max(1, bs));
  const int n_import_blocks = (m.num_tokens + bs - 1) / bs;
  std::string why;
  if (!options_.kv_transfer) {
    why = "this engine has no KV transfer";
  } else if (!kv_layout_.exportable() || !(m.layout == kv_layout_)) {
    why = "incompatible KV layouts";
  } else if (m.num_tokens < 1 || m.num_tokens >= static_cast<int>(s.tokens.size()) ||
             m.block_ids.size() != static_cast<size_t>(n_import_blocks) ||
             m.block_hashes.size() != n_full) {
    why = "the transfer does not match the prompt";
  } else {
    kv::extend_block_hashes(s.hashes, s.tokens, bs);
    for (size_t i = 0; i < n_full && why.empty(); ++i) {
      if (i >= s.hashes.sequence.size() || s.hashes.sequence[i] != m.block_hashes[i])
        why = "the transfer's block hashes do not match the prompt";
    }
  }
  if (!why.empty()) {
    spdlog::warn("engine: request {}: KV import refused ({}); prefilling locally", s.req.id, why);
    s.import_tried = true;
    stats_.kv_import_fallbacks++;
    if (options_.kv_transfer) options_.kv_transfer->release(m);
    return ImportStart::kLocal;
  }
  // Blocks reused: the local prefix cache's, and those a tier load brought in (continue_import).
  const int first = s.n_computed / bs;
  if (first >= n_import_blocks) {  // everything is cached here already
    s.import_tried = true;
    stats_.kv_imports++;
    stats_.kv_import_reused_blocks += static_cast<uint64_t>(first);
    stats_.kv_import_tier_blocks += static_cast<uint64_t>(s.import_tier_blocks);
    options_.kv_transfer->release(m);
    return ImportStart::kLocal;
  }
  if (!grow(s, m.num_tokens - s.n_computed)) return ImportStart::kNoBlocks;
  s.import_tried = true;
  s.fetch_gen = next_fetch_gen_++;
  s.fetch_first = first;
  s.fetch_n = n_import_blocks - first;
  s.fetch_start = Clock::now();
  s.fetch_deadline = s.fetch_start + options_.kv_fetch_timeout;
  s.fetch_answered = false;
  if (options_.kv_link) {
    // The blocks take their modelled time on this engine's inbound link, after the fetches ahead.
    const KvLink::Booking b =
        options_.kv_link->book(int64_t{s.fetch_n} * kv_layout_.bytes_per_block, s.fetch_start);
    s.link_arrives = b.arrives;
    s.link_seconds = b.seconds;
  }
  if (options_.kv_device_import && !m.device_pool.empty()) {
    // Copied device to device between steps (complete_fetch), in the order fetches complete.
    std::lock_guard inbox(mu_);
    fetched_.push_back({s.fetch_gen, std::string(), true});
    return ImportStart::kStarted;
  }
  start_fetch(s);
  return ImportStart::kStarted;
}

void Engine::start_fetch(Sequence& s) {
  const KvTransferMeta& m = *s.req.disagg.import;
  options_.kv_transfer->fetch(m, s.fetch_first, s.fetch_n,
                              [mb = mailbox_, gen = s.fetch_gen](Result<std::string> data) {
                                std::lock_guard lock(mb->mu);
                                if (mb->engine == nullptr) return;
                                Engine* e = mb->engine;
                                {
                                  std::lock_guard inbox(e->mu_);
                                  e->fetched_.push_back({gen, std::move(data)});
                                }
                                e->cv_.notify_one();
                              });
}

bool Engine::copy_from_device_pool(Sequence& s) {
  const KvTransferMeta& m = *s.req.disagg.import;
  const auto first = static_cast<size_t>(s.fetch_first), n = static_cast<size_t>(s.fetch_n);
  Status st = backend_->copy_kv_blocks_from_pool(
      m.device_pool, std::span<const int32_t>(m.block_ids).subspan(first, n),
      std::span<const int32_t>(s.block_ids).subspan(first, n),
      m.num_tokens - s.fetch_first * block_size_);
  if (st.is_ok()) return true;
  device_import_failures_++;
  if (!device_import_warned_) {  // once: it is a property of the deployment, not of a request
    spdlog::warn("engine: device-to-device KV import not possible ({}); fetching bytes instead",
                 st.to_string());
    device_import_warned_ = true;
  }
  return false;
}

void Engine::complete_fetch(Fetched f) {
  auto it = std::find_if(fetching_.begin(), fetching_.end(),
                         [&](const auto& s) { return s->fetch_gen == f.gen; });
  if (it == fetching_.end()) return;  // timed out or cancelled before it came
  if (f.direct) {
    if (copy_from_device_pool(**it)) {
      std::unique_ptr<Sequence> s = std::move(*it);
      fetching_.erase(it);
      return finish_import(std::move(s), true);
    }
    start_fetch(**it);  // same generation and deadline: the sequence stays in fetching_
    return;
  }
  Sequence& s = **it;
  const KvTransferMeta& m = *s.req.disagg.import;
  Result<std::string>& data = f.data;
  Status st = data.status();
  if (st.is_ok() && static_cast<int64_t>(data->size()) != kv_layout_.wire_bytes(s.fetch_n)) {
    st = internal_error("KV fetch returned " + std::to_string(data->size()) + " bytes for " +
                        std::to_string(s.fetch_n) + " blocks");
  }
  if (st.is_ok()) {
    st = backend_->write_kv_blocks(
        std::span<const int32_t>(s.block_ids)
            .subspan(static_cast<size_t>(s.fetch_first), static_cast<size_t>(s.fetch_n)),
        *data, m.num_tokens - s.fetch_first * block_size_);
  }
  std::unique_ptr<Sequence> seq = std::move(*it);
  fetching_.erase(it);
  if (!st.is_ok()) return fall_back(std::move(seq), st);
  if (options_.kv_link && seq->link_arrives > Clock::now()) {
    seq->fetch_answered = true;  // in, as far as the source goes; expire() lets it run later
    fetching_.push_back(std::move(seq));
    return;
  }
  finish_import(std::move(seq), false);
}

void Engine::finish_import(std::unique_ptr<Sequence> s, bool device) {
  const KvTransferMeta& m = *s->req.disagg.import;
  options_.kv_transfer->release(m);
  s->fetch_gen = 0;
  s->n_computed = m.num_tokens;
  const size_t n_full = static_cast<size_t>(s->n_computed / block_size_);
  if (n_full > s->n_registered) {
    kv::extend_block_hashes(s->hashes, s->tokens, block_size_);
    pool_.cache_full_blocks(std::span<const kv::BlockRef>(s->blocks).first(n_full), s->n_registered,
                            s->hashes, s->tokens);
    s->n_registered = n_full;
  }
  // Bytes the blocks hold (a simulated layout's too: what its link modelled).
  const uint64_t bytes =
      static_cast<uint64_t>(s->fetch_n) * static_cast<uint64_t>(kv_layout_.bytes_per_block);
  const double seconds = options_.kv_link && !device
                             ? s->link_seconds
                             : std::chrono::duration<double>(Clock::now() - s->fetch_start).count();
  stats_.kv_imports++;
  stats_.kv_import_fetched_blocks += static_cast<uint64_t>(s->fetch_n);
  stats_.kv_import_reused_blocks += static_cast<uint64_t>(s->fetch_first);
  stats_.kv_import_tier_blocks += static_cast<uint64_t>(s->import_tier_blocks);
  stats_.kv_import_bytes += bytes;
  stats_.kv_import_seconds += seconds;
  if (device) {
    stats_.kv_device_imports++;
    stats_.kv_import_device_bytes += bytes;
    stats_.kv_import_device_seconds += seconds;
  }
  running_.push_back(std::move(s));
}

void Engine::fall_back(std::unique_ptr<Sequence> s, const Status& why) {
  spdlog::warn("engine: request {}: KV import failed ({}); prefilling locally", s->req.id,
               why.to_string());
  if (options_.kv_transfer) options_.kv_transfer->release(*s->req.disagg.import);
  s->fetch_gen = 0;
  free_blocks(*s);
  stats_.kv_import_fallbacks++;
  waiting_.push_front(std::move(s));
}

}  // namespace turbine::engine

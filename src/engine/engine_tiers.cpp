// Engine: KV cache tiers (issue 24, kvtier/). Evicted prefix-cache blocks go down to the host and
// disk tiers; admission brings the leading blocks they hold back up while the sequence waits in
// the loading state (fetching_), then it runs from there. Everything here runs on the engine
// thread; the TierManager's worker does the host copies and the I/O. Offloads never wait: the
// device -> host copies are enqueued (Backend::read_kv_blocks_async, a CUDA copy stream) into the
// tiers' staging slots, polled at every loop iteration and offered once done; blocks beyond the
// in-flight budget are dropped and counted.
#include <algorithm>
#include <chrono>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "engine/engine.h"
#include "engine/engine_sequence.h"

namespace turbine::engine {

bool Engine::begin_tier_load(Sequence& s, size_t max_blocks) {
  const size_t first = s.blocks.size();  // the device prefix cache's hit
  if (first >= max_blocks || s.n_computed != static_cast<int>(first) * block_size_) return false;
  const std::span<const uint64_t> wanted =
      std::span<const uint64_t>(s.hashes.sequence).subspan(first, max_blocks - first);
  // A load takes the blocks of its whole prefix at once (a computed prompt takes them chunk by
  // chunk): only when the pool holds the rest of the sequence beside one more block for each
  // running sequence, or the load would cost preemptions of others (measured on the mock,
  // docs/PERFORMANCE.md). Otherwise the sequence computes as it would without tiers.
  const int seq_blocks = (static_cast<int>(s.tokens.size()) + block_size_ - 1) / block_size_;
  if (pool_.num_free() < seq_blocks - static_cast<int>(first) + static_cast<int>(running_.size()))
    return false;
  const std::vector<kvtier::Tier> held = tiers_->lookup(wanted);
  const size_t n = held.size();
  if (n == 0) return false;
  if (!grow(s, static_cast<int>(n) * block_size_)) return false;
  s.tier_load_id = next_tier_load_++;
  s.tier_first = static_cast<int>(first);
  s.tier_n = static_cast<int>(n);
  s.fetch_start = Clock::now();
  s.fetch_deadline = s.fetch_start + options_.kv_tier_load_timeout;
  s.fetch_answered = false;
  tiers_->onboard(s.tier_load_id, std::vector<uint64_t>(wanted.begin(), wanted.begin() + n));
  return true;
}

void Engine::complete_tier_load(kvtier::TierLoad l) {
  auto it = std::find_if(fetching_.begin(), fetching_.end(),
                         [&](const auto& s) { return s->tier_load_id == l.load_id; });
  if (it == fetching_.end()) return;  // cancelled or timed out meanwhile
  std::unique_ptr<Sequence> s = std::move(*it);
  fetching_.erase(it);
  int n_ok = std::clamp(l.n_ok, 0, s->tier_n);
  if (static_cast<int64_t>(l.bytes.size()) != int64_t{n_ok} * tiers_->block_bytes()) n_ok = 0;
  if (kv_layout_.simulated()) {
    // No bytes to write; the blocks arrive when the modelled tier links say so.
    const Clock::time_point now = Clock::now();
    Clock::time_point arrives = now;
    const int n_host = std::min(l.n_host, n_ok);
    const int n_disk = std::min(l.n_disk, n_ok - n_host);
    if (options_.kv_tier_host_link && n_host > 0)
      arrives = std::max(arrives, options_.kv_tier_host_link
                                      ->book(int64_t{n_host} * kv_layout_.bytes_per_block, now)
                                      .arrives);
    if (options_.kv_tier_disk_link && n_disk > 0)
      arrives = std::max(arrives, options_.kv_tier_disk_link
                                      ->book(int64_t{n_disk} * kv_layout_.bytes_per_block, now)
                                      .arrives);
    if (arrives > now) {
      s->tier_ok = n_ok;
      s->fetch_answered = true;
      s->link_arrives = arrives;  // expire() finishes it then
      fetching_.push_back(std::move(s));
      return;
    }
    return finish_tier_load(std::move(s), n_ok);
  }
  if (n_ok > 0) {
    const auto ids = std::span<const int32_t>(s->block_ids)
                         .subspan(static_cast<size_t>(s->tier_first), static_cast<size_t>(n_ok));
    Status st = backend_->write_kv_blocks_async(ids, l.bytes.view(), n_ok * block_size_);
    if (!st.is_ok()) {
      spdlog::warn("engine: request {}: writing onboarded KV failed ({}); recomputing", s->req.id,
                   st.to_string());
      n_ok = 0;
    }
  }
  finish_tier_load(std::move(s), n_ok);
}

void Engine::finish_tier_load(std::unique_ptr<Sequence> s, int n_ok) {
  s->tier_load_id = 0;
  s->fetch_answered = false;
  stats_.kv_tier_loads++;
  // With an import to follow, the blocks the load missed are fetched, not recomputed.
  const bool import_next = s->req.disagg.import && !s->import_tried;
  if (!import_next) stats_.kv_tier_recomputed_blocks += static_cast<uint64_t>(s->tier_n - n_ok);
  stats_.kv_tier_onboarded_tokens +=
      static_cast<uint64_t>(n_ok) * static_cast<uint64_t>(block_size_);
  // The blocks read back are the sequence's computed prefix; the rest of the blocks it took stay
  // with it for the positions it computes now.
  s->n_computed = (s->tier_first + n_ok) * block_size_;
  const size_t n_full = static_cast<size_t>(s->n_computed / block_size_);
  if (n_full > s->n_registered) {
    pool_.cache_full_blocks(std::span<const kv::BlockRef>(s->blocks).first(n_full), s->n_registered,
                            s->hashes, s->tokens);
    s->n_registered = n_full;
  }
  if (s->n_generated == 0) s->cached_tokens = std::min(s->n_computed, s->n_prompt);
  if (import_next) {
    s->import_tier_blocks = n_ok;
    return continue_import(std::move(s));
  }
  running_.push_back(std::move(s));
}

void Engine::continue_import(std::unique_ptr<Sequence> s) {
  // begin_import() takes the blocks computed so far (device hit + tier load) as reused and
  // fetches only those after them; a short or failed tier load just leaves more to fetch.
  const ImportStart started = begin_import(*s);
  // Its blocks for the rest may have evicted cached blocks, outside schedule(): copy those to the
  // tiers now, before the fetched bytes (or the device copy) can overwrite them.
  offload_blocks();
  switch (started) {
    case ImportStart::kStarted: fetching_.push_back(std::move(s)); return;
    case ImportStart::kLocal: running_.push_back(std::move(s)); return;
    case ImportStart::kNoBlocks:
      // No blocks for the rest now: back to the queue's front. The blocks it loaded stay in the
      // prefix cache, so its next start finds them on the device and imports the rest.
      free_blocks(*s);
      waiting_.push_front(std::move(s));
      return;
  }
}

void Engine::tier_load_failed(std::unique_ptr<Sequence> s, const Status& why) {
  spdlog::warn("engine: request {}: {}; recomputing", s->req.id, why.to_string());
  s->tier_load_id = 0;
  stats_.kv_tier_load_timeouts++;
  if (!s->req.disagg.import || s->import_tried)
    stats_.kv_tier_recomputed_blocks += static_cast<uint64_t>(s->tier_n);
  free_blocks(*s);
  // Back to the front of the queue; the next start finds the blocks again if they are still
  // held, so the sequence computes instead of loading once more (the tiers answered too slowly).
  waiting_.push_front(std::move(s));
}

void Engine::offload_blocks() {
  std::vector<kv::BlockPool::Evicted> evicted = pool_.take_evicted();
  if (tiers_->options().offload_all_completed) {
    // Completed blocks first: one also evicted in this schedule() is the same block, still intact.
    std::vector<kv::BlockPool::Evicted> stored = pool_.take_stored();
    stored.insert(stored.end(), evicted.begin(), evicted.end());
    evicted = std::move(stored);
  }
  if (evicted.empty()) return;
  {
    // Once per block: drop repeats, and blocks a tier holds (or is storing) already.
    std::vector<uint64_t> hashes;
    hashes.reserve(evicted.size());
    for (const auto& e : evicted) hashes.push_back(e.hash);
    const std::vector<bool> held = tiers_->holds(hashes);
    std::unordered_set<uint64_t> seen;
    size_t k = 0;
    for (size_t i = 0; i < evicted.size(); ++i) {
      if (held[i] || offloading_.count(evicted[i].hash) != 0 ||
          !seen.insert(evicted[i].hash).second)
        continue;
      evicted[k++] = evicted[i];
    }
    evicted.resize(k);
  }
  if (evicted.empty()) return;
  // Parents before their children (the pool evicts leaves first): the tiers' BlockStored events
  // then name parents the router already holds for this worker.
  std::unordered_map<uint64_t, size_t> at;
  for (size_t i = 0; i < evicted.size(); ++i) at[evicted[i].hash] = i;
  std::vector<size_t> order;
  std::vector<uint8_t> placed(evicted.size(), 0);
  std::function<void(size_t)> place = [&](size_t i) {
    if (placed[i] != 0) return;
    placed[i] = 1;
    if (evicted[i].parent_hash) {
      if (auto p = at.find(*evicted[i].parent_hash); p != at.end()) place(p->second);
    }
    order.push_back(i);
  };
  for (size_t i = 0; i < evicted.size(); ++i) place(i);
  std::vector<int32_t> ids;
  std::vector<uint64_t> hashes;
  std::vector<kvtier::BlockMeta> meta;
  ids.reserve(evicted.size());
  hashes.reserve(evicted.size());
  meta.reserve(evicted.size());
  for (size_t i : order) {
    ids.push_back(evicted[i].id);
    hashes.push_back(evicted[i].hash);
    meta.push_back({evicted[i].local_hash, evicted[i].parent_hash});
  }
  if (kv_layout_.simulated()) {
    // Placeholders: no bytes to copy.
    std::string bytes(ids.size() * static_cast<size_t>(tiers_->block_bytes()), '\0');
    tiers_->offer(std::move(hashes), std::move(bytes), std::move(meta));
    return;
  }
  // Within the in-flight budget only; the rest (children last: parents come first) is dropped
  // rather than waited for: a server whose copies fall behind degrades to "no tier".
  std::vector<uint8_t*> slots = tiers_->reserve_staging(ids.size());
  if (slots.size() < ids.size()) {
    tiers_->count_dropped(ids.size() - slots.size());
    ids.resize(slots.size());
    hashes.resize(slots.size());
    meta.resize(slots.size());
  }
  if (slots.empty()) return;
  Result<uint64_t> ticket = backend_->read_kv_blocks_async(ids, slots);
  if (!ticket.has_value()) {
    spdlog::warn("engine: offloading {} KV blocks failed: {}", ids.size(),
                 ticket.status().to_string());
    tiers_->release_staging(slots);
    return;
  }
  for (uint64_t h : hashes) offloading_.insert(h);
  offloads_.push_back({*ticket, std::move(hashes), std::move(meta), std::move(slots)});
  poll_offloads(false);  // a synchronous backend's copy is done already
}

void Engine::poll_offloads(bool wait) {
  while (!offloads_.empty()) {
    PendingOffload& p = offloads_.front();
    std::optional<Status> done;
    if (wait) {
      done = backend_->wait_kv_copy(p.ticket);
    } else {
      done = backend_->poll_kv_copy(p.ticket);
      if (!done) return;  // copies complete in order: the later ones are in flight too
    }
    for (uint64_t h : p.hashes) offloading_.erase(h);
    if (done->is_ok()) {
      tiers_->offer_staged(std::move(p.hashes), std::move(p.slots), std::move(p.meta));
    } else {
      spdlog::warn("engine: offloading {} KV blocks failed: {}", p.hashes.size(),
                   done->to_string());
      tiers_->release_staging(p.slots);
    }
    offloads_.pop_front();
  }
}

void Engine::publish_tier_events() {
  // Stored blocks of one tier that chain (each the parent of the next: offers come parents
  // first) go out as one BlockStored; removals of one tier in a row as one BlockRemoved. Every
  // evicted block makes such an event, so their number is what the router and the event plane pay.
  kv::BlockRemoved removed;
  kv::BlockStored stored;
  auto flush = [&] {
    if (!removed.block_hashes.empty()) pool_.publish_event(std::move(removed));
    if (!stored.blocks.empty()) pool_.publish_event(std::move(stored));
    removed = kv::BlockRemoved{};
    stored = kv::BlockStored{};
  };
  for (const kvtier::TierChange& c : tiers_->take_changes()) {
    const auto tier = static_cast<uint8_t>(c.tier);
    if (!c.stored) {
      if (!stored.blocks.empty() || (!removed.block_hashes.empty() && removed.storage_tier != tier))
        flush();
      removed.storage_tier = tier;
      removed.block_hashes.push_back(c.hash);
      continue;
    }
    if (c.meta.local_hash == 0 && !c.meta.parent_hash) continue;  // offered without its names
    const bool chains = !stored.blocks.empty() && stored.storage_tier == tier &&
                        c.meta.parent_hash == stored.blocks.back().block_hash;
    if (!chains) {
      flush();
      stored.parent_hash = c.meta.parent_hash;
      stored.block_size = block_size_;
      stored.storage_tier = tier;
    }
    stored.blocks.push_back({c.hash, c.meta.local_hash});
  }
  flush();
}

void Engine::add_tier_stats(EngineStats& s) const {
  if (!tiers_) return;
  const kvtier::TierStats t = tiers_->stats();
  auto fill = [](const kvtier::TierCounters& c, uint64_t& off_blocks, uint64_t& off_bytes,
                 uint64_t& on_blocks, uint64_t& on_bytes, uint64_t& lookups, uint64_t& hits,
                 double& seconds, int64_t& used, int64_t& capacity, uint64_t& corrupt,
                 uint64_t& errors) {
    off_blocks = c.offloaded_blocks;
    off_bytes = c.offloaded_bytes;
    on_blocks = c.onboarded_blocks;
    on_bytes = c.onboarded_bytes;
    lookups = c.lookups;
    hits = c.hits;
    seconds = c.onboard_seconds;
    used = c.used_bytes;
    capacity = c.capacity_bytes;
    corrupt = c.corrupt_blocks;
    errors = c.errors;
  };
  if (t.host_enabled) {
    fill(t.host, s.kv_tier_host_offloaded_blocks, s.kv_tier_host_offloaded_bytes,
         s.kv_tier_host_onboarded_blocks, s.kv_tier_host_onboarded_bytes,
         s.kv_tier_host_lookup_blocks, s.kv_tier_host_hit_blocks, s.kv_tier_host_onboard_seconds,
         s.kv_tier_host_used_bytes, s.kv_tier_host_capacity_bytes, s.kv_tier_host_corrupt_blocks,
         s.kv_tier_host_errors);
  }
  if (t.disk_enabled) {
    fill(t.disk, s.kv_tier_disk_offloaded_blocks, s.kv_tier_disk_offloaded_bytes,
         s.kv_tier_disk_onboarded_blocks, s.kv_tier_disk_onboarded_bytes,
         s.kv_tier_disk_lookup_blocks, s.kv_tier_disk_hit_blocks, s.kv_tier_disk_onboard_seconds,
         s.kv_tier_disk_used_bytes, s.kv_tier_disk_capacity_bytes, s.kv_tier_disk_corrupt_blocks,
         s.kv_tier_disk_errors);
    s.kv_tier_disk_filtered_blocks = t.disk.filtered_blocks;
  }
  s.kv_tier_queued_jobs = t.queued_jobs;
  s.kv_tier_offload_dropped_blocks = t.offload_dropped_blocks;
  s.kv_tier_offload_inflight_blocks = t.offload_inflight_blocks;
}

}  // namespace turbine::engine

#include "router/routed_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include <spdlog/spdlog.h>

namespace turbine::router {

Status RouterOptions::validate() const {
  if (!(overlap_weight >= 0) || !std::isfinite(overlap_weight))
    return invalid_argument("the KV overlap weight must be >= 0", "kv_overlap_weight");
  if (!(temperature >= 0) || !std::isfinite(temperature))
    return invalid_argument("the router temperature must be >= 0", "router_temperature");
  if (!(approx_ttl_s > 0))
    return invalid_argument("the approximate TTL must be > 0", "approx_ttl_s");
  if (migration_limit < 0)
    return invalid_argument("migration_limit must be >= 0", "migration_limit");
  if (!(host_tier_weight >= 0 && host_tier_weight <= 1))
    return invalid_argument("the host tier weight must be in [0, 1]", "router_host_tier_weight");
  if (!(disk_tier_weight >= 0 && disk_tier_weight <= 1))
    return invalid_argument("the disk tier weight must be in [0, 1]", "router_disk_tier_weight");
  return Status::ok();
}

// A caller's request. Fields below `mu` are guarded by the router's mu_; `mu` orders deliveries.
struct RoutedEngine::Request {
  std::recursive_mutex mu;
  uint64_t caller_id = 0;
  std::vector<int32_t> prompt;  // the caller's prompt
  engine::SamplingParams params;
  engine::KvDisagg disagg;    // passed to every attempt (disaggregated serving, issue 8)
  trace::TraceContext trace;  // the caller's span; each attempt gets a "route" span under it
  engine::OutputCallback on_output;
  std::vector<int32_t> generated;
  int cached_tokens = -1;  // reported by the first attempt's first output
  int migrations = 0;
  bool cancelled = false;
  bool done = false;
  std::vector<uint64_t> excluded;  // workers lost while running this request
  // The current attempt.
  uint64_t worker_id = 0;
  uint64_t attempt_id = 0;
  std::vector<uint64_t> load_blocks;  // chained hashes of its full blocks, counted on the worker
  bool load_partial = false;          // and a partial last block
  double load_prefill_tokens = 0;
  bool prefill_pending = false;
  uint64_t group_worker = 0;  // counted in groups_ on this worker (params.prompt_group)
};

RoutedEngine::RoutedEngine(RouterOptions options)
    : options_(options), approx_(options.approx_ttl_s), rng_(options.seed) {}

RoutedEngine::~RoutedEngine() {
  shutdown();
}

size_t RoutedEngine::Worker::active_prefix(std::span<const uint64_t> sequence) const {
  size_t lo = 0;
  size_t hi = sequence.size();
  while (lo < hi) {  // invariant: the first lo blocks are active, block hi (if any) is not
    const size_t mid = lo + (hi - lo + 1) / 2;
    if (active_blocks.find(sequence[mid - 1]) != nullptr) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

void RoutedEngine::report_load_locked(uint64_t worker_id, const Worker& w) {
  if (options_.observer)
    options_.observer->worker_load(worker_id, w.decode_blocks(), w.prefill_tokens);
}

double RoutedEngine::now_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void RoutedEngine::add_worker(WorkerInfo info, std::shared_ptr<engine::AsyncEngine> worker) {
  if (!worker || info.instance_id == 0) {
    spdlog::error("router: refusing a worker without an engine or with instance id 0");
    return;
  }
  if (info.block_size <= 0) info.block_size = worker->block_size();
  release_retired();
  std::lock_guard lock(mu_);
  if (block_size_ == 0) block_size_ = info.block_size;
  if (info.block_size != block_size_) {
    spdlog::error(
        "router: worker {:x} uses KV blocks of {} tokens, the router {}: its cache cannot be "
        "matched (routing still balances load)",
        info.instance_id, info.block_size, block_size_);
  }
  Worker& w = workers_[info.instance_id];
  if (w.engine && w.draining) {
    // Back before its drain ended (a discovery outage made it look gone): it keeps the
    // connection its in-flight requests run on.
    w.draining = false;
    spdlog::info("router: draining worker {:x} is back", info.instance_id);
    return;
  }
  if (w.engine) {
    spdlog::warn("router: worker {:x} added again; replacing it", info.instance_id);
    retired_.push_back(std::move(w.engine));  // its in-flight requests keep their callbacks
  }
  w.draining = false;
  w.info = info;
  w.engine = std::move(worker);
  spdlog::info("router: worker {:x} added ({} KV blocks of {} tokens); {} workers",
               info.instance_id, info.kv_total_blocks, info.block_size, workers_.size());
}

void RoutedEngine::drain_worker(uint64_t instance_id) {
  release_retired();
  {
    std::lock_guard lock(mu_);
    auto it = workers_.find(instance_id);
    if (it == workers_.end()) return;
    if (it->second.active_requests > 0) {
      it->second.draining = true;
      spdlog::info("router: worker {:x} draining; {} in-flight requests finish there", instance_id,
                   it->second.active_requests);
      return;
    }
  }
  remove_worker(instance_id);  // nothing in flight
}

void RoutedEngine::retire_if_drained_locked(uint64_t worker_id) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || !it->second.draining || it->second.active_requests > 0) return;
  retired_.push_back(std::move(it->second.engine));
  workers_.erase(it);
  index_.remove_worker(worker_id);
  approx_.remove_worker(worker_id);
  if (options_.observer) options_.observer->worker_removed(worker_id);
  spdlog::info("router: worker {:x} drained and dropped; {} workers left", worker_id,
               workers_.size());
}

void RoutedEngine::release_retired() {
  std::vector<std::shared_ptr<engine::AsyncEngine>> retired;
  {
    std::lock_guard lock(mu_);
    retired.swap(retired_);
  }
  retired.clear();  // outside the lock: an engine's destructor may join threads
}

void RoutedEngine::remove_worker(uint64_t instance_id) {
  release_retired();
  std::shared_ptr<engine::AsyncEngine> engine;
  std::vector<std::shared_ptr<Request>> affected;
  {
    std::lock_guard lock(mu_);
    auto it = workers_.find(instance_id);
    if (it == workers_.end()) return;
    engine = std::move(it->second.engine);
    workers_.erase(it);
    index_.remove_worker(instance_id);
    approx_.remove_worker(instance_id);
    if (options_.observer) options_.observer->worker_removed(instance_id);
    for (auto& [id, r] : requests_)
      if (r->worker_id == instance_id) affected.push_back(r);
    std::erase_if(groups_, [&](const auto& g) { return g.second.first == instance_id; });
    spdlog::info("router: worker {:x} removed; {} in-flight requests migrate; {} workers left",
                 instance_id, affected.size(), workers_.size());
  }
  for (const auto& r : affected) {
    std::lock_guard rlock(r->mu);
    uint64_t attempt = 0;
    {
      std::lock_guard lock(mu_);
      if (r->done || r->worker_id != instance_id) continue;  // finished or moved meanwhile
      attempt = r->attempt_id;
      attempts_.erase(attempt);
      r->prefill_pending = false;  // the worker's load entry is gone with it
      r->group_worker = 0;         // and its prompt group's entry
      r->excluded.push_back(instance_id);
    }
    engine->cancel(attempt);  // its outputs are ignored from now on
    resubmit(r);
  }
  // `engine` is released here, outside every lock: an in-process engine joins its thread.
}

void RoutedEngine::on_kv_event(uint64_t instance_id, const kv::KvEvent& event) {
  std::lock_guard lock(mu_);
  stats_.kv_events++;
  if (!options_.use_kv_events) return;
  if (workers_.find(instance_id) == workers_.end()) return;  // removed (or not added yet)
  index_.apply(instance_id, event);
  if (options_.observer)
    options_.observer->index_changed(index_.stats().indexed_blocks, stats_.kv_events);
}

std::vector<uint64_t> RoutedEngine::worker_ids() const {
  std::lock_guard lock(mu_);
  std::vector<uint64_t> ids;
  for (const auto& [id, w] : workers_) ids.push_back(id);
  return ids;
}

RouterStats RoutedEngine::router_stats() const {
  RouterStats s;
  std::vector<std::shared_ptr<engine::AsyncEngine>> engines;
  {
    std::lock_guard lock(mu_);
    s = stats_;
    s.indexer = index_.stats();
    for (const auto& [id, w] : workers_) {
      WorkerLoad l;
      l.instance_id = id;
      l.active_requests = w.active_requests;
      l.active_decode_blocks = w.decode_blocks();
      l.pending_prefill_tokens = w.prefill_tokens;
      l.indexed_blocks = index_.worker_blocks(id);
      l.routed = w.routed;
      s.workers.push_back(l);
      engines.push_back(w.engine);
    }
  }
  // What the workers report of themselves, asked outside the router's lock.
  for (size_t i = 0; i < engines.size(); ++i) {
    const WorkerLoad r = engine::reported_load(s.workers[i].instance_id, engines[i]->stats());
    s.workers[i].running = r.running;
    s.workers[i].waiting = r.waiting;
    s.workers[i].kv_used_blocks = r.kv_used_blocks;
    s.workers[i].kv_total_blocks = r.kv_total_blocks;
  }
  return s;
}

Result<RoutedEngine::Choice> RoutedEngine::route_locked(Request& r, const kv::BlockHashes& hashes,
                                                        uint64_t override_id) {
  if (stopping_) return Status{StatusCode::kUnavailable, "the server is shutting down"};
  std::vector<Candidate> cands;
  cands.reserve(workers_.size());
  for (const auto& [id, w] : workers_) {
    if (w.draining) continue;
    if (std::find(r.excluded.begin(), r.excluded.end(), id) != r.excluded.end()) continue;
    if (override_id != 0 && id != override_id) continue;
    Candidate c;
    c.worker_id = id;
    c.pending_prefill_tokens = w.prefill_tokens;
    c.active_decode_blocks = w.decode_blocks();
    c.tree_blocks = index_.worker_blocks(id);
    cands.push_back(c);
  }
  if (cands.empty()) {
    if (override_id != 0) {
      return not_found(fmt::format("worker instance {:x} is not serving this model", override_id),
                       "x-worker-instance-id");
    }
    return Status{StatusCode::kUnavailable, "no worker is available to serve this request"};
  }
  const double now = now_s();
  const bool approx = !options_.use_kv_events;
  if (approx) approx_.expire(index_, now);
  index_.find_matches(hashes.local, hashes.sequence, matches_);
  for (const WorkerMatch& m : matches_) {
    for (Candidate& c : cands)
      if (c.worker_id == m.worker_id)
        c.cached_blocks = m.blocks - (1.0 - options_.host_tier_weight) * m.host_blocks -
                          (1.0 - options_.disk_tier_weight) * m.disk_blocks;
  }
  const size_t n_tokens = r.prompt.size() + r.generated.size();
  const double tokens = static_cast<double>(n_tokens);
  const bool partial = n_tokens % static_cast<size_t>(std::max(1, block_size_)) != 0;
  for (Candidate& c : cands) {
    const size_t active = workers_[c.worker_id].active_prefix(hashes.sequence);
    c.new_decode_blocks = static_cast<double>(hashes.sequence.size() - active) + (partial ? 1 : 0);
  }
  kv_costs(cands, tokens, block_size_, options_.overlap_weight);

  size_t pick = 0;
  const uint64_t group = r.params.prompt_group;
  const auto grouped = group != 0 ? groups_.find(group) : groups_.end();
  size_t group_pick = cands.size();
  if (grouped != groups_.end()) {
    for (size_t i = 0; i < cands.size(); ++i)
      if (cands[i].worker_id == grouped->second.first) group_pick = i;
  }
  if (override_id != 0) {
    stats_.overrides++;
  } else if (group_pick < cands.size()) {
    pick = group_pick;  // the group's worker holds (or is computing) its prompt
  } else {
    switch (options_.mode) {
      case RouterMode::kKv: pick = select_by_cost(cands, options_.temperature, rng_); break;
      case RouterMode::kRoundRobin: pick = round_robin_++ % cands.size(); break;
      case RouterMode::kRandom:
        pick = std::uniform_int_distribution<size_t>(0, cands.size() - 1)(rng_);
        break;
      case RouterMode::kLeastLoaded: {
        int best = std::numeric_limits<int>::max();
        size_t n_tied = 0;
        for (size_t i = 0; i < cands.size(); ++i) {
          const int load = workers_[cands[i].worker_id].active_requests;
          if (load < best) {
            best = load;
            pick = i;
            n_tied = 1;
          } else if (load == best &&
                     std::uniform_int_distribution<size_t>(0, n_tied++)(rng_) == 0) {
            pick = i;
          }
        }
        break;
      }
    }
  }
  const Candidate& c = cands[pick];
  Worker& w = workers_[c.worker_id];
  const double bs = std::max(1, block_size_);
  r.worker_id = c.worker_id;
  r.attempt_id = next_attempt_id_++;
  r.load_blocks.assign(hashes.sequence.begin(), hashes.sequence.end());
  r.load_partial = partial;
  r.load_prefill_tokens = std::max(0.0, tokens - c.cached_blocks * bs);
  r.prefill_pending = true;
  w.active_requests++;
  for (uint64_t h : r.load_blocks) ++*w.active_blocks.insert(h, 0).first;
  if (partial) w.partial_blocks++;
  w.prefill_tokens += r.load_prefill_tokens;
  w.routed++;
  attempts_[r.attempt_id] = r.caller_id;
  if (group != 0) {
    auto [g, added] = groups_.try_emplace(group, c.worker_id, 0);
    if (added || g->second.first == c.worker_id) {
      g->second.first = c.worker_id;
      g->second.second++;
      r.group_worker = c.worker_id;
    }
  }
  stats_.decisions++;
  stats_.queried_blocks += hashes.local.size();
  stats_.hit_blocks += static_cast<uint64_t>(c.cached_blocks);
  if (approx) approx_.record(index_, c.worker_id, hashes, now);
  if (options_.observer) {
    RoutingDecision d;
    d.worker_id = c.worker_id;
    d.mode = options_.mode;
    d.override_header = override_id != 0;
    d.migration = r.migrations > 0;
    d.prompt_blocks = hashes.local.size();
    d.cached_blocks = static_cast<size_t>(c.cached_blocks);
    d.block_size = block_size_;
    options_.observer->routed(d);
  }
  report_load_locked(c.worker_id, w);
  // Debug: one line per decision (formatted only when enabled; this runs under the router lock).
  spdlog::debug(
      "router: request {} -> worker {:x} ({}{}): cost {:.1f} = {:.1f} * prefill_blocks + "
      "decode_blocks; {} of {} blocks cached, worker cache {} blocks",
      r.caller_id, c.worker_id, override_id != 0 ? "override" : router_mode_name(options_.mode),
      r.migrations > 0 ? ", migrated" : "", c.cost, options_.overlap_weight,
      static_cast<uint64_t>(c.cached_blocks), hashes.local.size(), c.tree_blocks);
  return Choice{c.worker_id, w.engine, r.attempt_id};
}

void RoutedEngine::release_load_locked(Request& r) {
  attempts_.erase(r.attempt_id);
  if (r.group_worker != 0) {
    auto g = groups_.find(r.params.prompt_group);
    if (g != groups_.end() && g->second.first == r.group_worker && --g->second.second <= 0)
      groups_.erase(g);
    r.group_worker = 0;
  }
  auto it = workers_.find(r.worker_id);
  if (it == workers_.end()) return;
  Worker& w = it->second;
  w.active_requests--;
  for (uint64_t h : r.load_blocks) {
    uint32_t* n = w.active_blocks.find(h);
    if (n != nullptr && --*n == 0) w.active_blocks.erase(h);
  }
  r.load_blocks.clear();
  if (r.load_partial) w.partial_blocks--;
  r.load_partial = false;
  if (r.prefill_pending) w.prefill_tokens -= r.load_prefill_tokens;
  r.prefill_pending = false;
  report_load_locked(r.worker_id, w);
  retire_if_drained_locked(r.worker_id);
}

Status RoutedEngine::submit_attempt(const std::shared_ptr<Request>& r, const Choice& c) {
  engine::EngineRequest er;
  er.id = c.attempt_id;
  er.prompt = r->prompt;
  er.prompt.insert(er.prompt.end(), r->generated.begin(), r->generated.end());
  er.params = r->params;
  const int n_gen = static_cast<int>(r->generated.size());
  er.params.max_tokens = r->params.max_tokens - n_gen;
  er.params.min_tokens = std::max(0, r->params.min_tokens - n_gen);
  // The new worker's matcher replays what the lost one generated under the constraint.
  if (er.params.constraint.active()) er.params.constraint_replay += n_gen;
  // Prompt logprobs come with the first token: once one was generated they were delivered.
  if (n_gen > 0) er.params.prompt_logprobs = -1;
  er.disagg = r->disagg;
  // One span per decision (first routing and every migration), parent of the worker's span.
  trace::Span span;
  if (options_.tracer)
    span = options_.tracer->start_span("route", trace::SpanKind::kInternal, r->trace);
  span.set_attribute("turbine.router.mode", std::string(router_mode_name(options_.mode)));
  span.set_attribute("turbine.worker.instance_id", fmt::format("{:x}", c.worker_id));
  span.set_attribute("turbine.router.migration", static_cast<int64_t>(r->migrations));
  span.set_attribute("turbine.router.resumed_tokens", static_cast<int64_t>(n_gen));
  er.trace = span.recording() ? span.context() : r->trace;
  er.on_output = [this, attempt = c.attempt_id](engine::EngineOutput&& out) {
    on_worker_output(attempt, std::move(out));
  };
  return c.engine->submit(std::move(er));
}

int RoutedEngine::cached_prefix_tokens(std::span<const int32_t> prompt) {
  int bs;
  {
    std::lock_guard lock(mu_);
    bs = block_size_;
  }
  if (bs < 1 || prompt.size() < static_cast<size_t>(bs)) return 0;
  const kv::BlockHashes hashes = kv::block_hashes(prompt, bs);
  std::vector<WorkerMatch> matches;
  std::lock_guard lock(mu_);
  index_.find_matches(hashes.local, hashes.sequence, matches);
  uint32_t best = 0;
  for (const WorkerMatch& m : matches) {
    auto w = workers_.find(m.worker_id);
    if (w != workers_.end() && !w->second.draining) best = std::max(best, m.blocks);
  }
  return static_cast<int>(best) * bs;
}

Status RoutedEngine::submit(engine::EngineRequest request) {
  if (request.prompt.empty())
    return invalid_argument("the prompt must contain at least one token", "prompt");
  if (!request.on_output) return internal_error("router request without an output callback");
  auto r = std::make_shared<Request>();
  r->caller_id = request.id;
  r->prompt = std::move(request.prompt);
  r->params = std::move(request.params);
  r->disagg = std::move(request.disagg);
  r->trace = request.trace;
  r->on_output = std::move(request.on_output);
  int bs;
  {
    std::lock_guard lock(mu_);
    bs = block_size_;
  }
  const kv::BlockHashes hashes = kv::block_hashes(r->prompt, std::max(1, bs));
  std::lock_guard rlock(r->mu);
  for (;;) {
    Result<Choice> choice = internal_error("no routing decision yet");
    {
      std::lock_guard lock(mu_);
      if (requests_.count(r->caller_id) != 0)
        return invalid_argument("duplicate request id " + std::to_string(r->caller_id));
      choice = route_locked(*r, hashes, request.routing.instance_id);
      if (!choice) return choice.status();
      requests_[r->caller_id] = r;
    }
    Status st = submit_attempt(r, *choice);
    if (st.is_ok()) return st;
    {
      std::lock_guard lock(mu_);
      release_load_locked(*r);
      requests_.erase(r->caller_id);
      stats_.decisions--;
      if (st.code() == StatusCode::kUnavailable && request.routing.instance_id == 0 &&
          options_.observer)
        options_.observer->migrated(MigrationType::kNewRequest);
    }
    // A worker that is going away is skipped; any other refusal (bad request, full queue) is
    // the caller's answer.
    if (st.code() != StatusCode::kUnavailable || request.routing.instance_id != 0) return st;
    r->excluded.push_back(choice->worker_id);
  }
}

void RoutedEngine::on_worker_output(uint64_t attempt_id, engine::EngineOutput&& out) {
  std::shared_ptr<Request> r;
  {
    std::lock_guard lock(mu_);
    auto a = attempts_.find(attempt_id);
    if (a == attempts_.end()) return;
    auto it = requests_.find(a->second);
    if (it == requests_.end()) return;
    r = it->second;
  }
  std::lock_guard rlock(r->mu);
  bool migrate = false;
  {
    std::lock_guard lock(mu_);
    if (r->done || r->attempt_id != attempt_id || attempts_.count(attempt_id) == 0) return;
    if (r->prefill_pending && (!out.tokens.empty() || out.finish != engine::FinishReason::kNone)) {
      auto w = workers_.find(r->worker_id);
      if (w != workers_.end()) {
        w->second.prefill_tokens -= r->load_prefill_tokens;
        report_load_locked(r->worker_id, w->second);
      }
      r->prefill_pending = false;
    }
    if (r->cached_tokens < 0 && r->migrations == 0) r->cached_tokens = out.cached_tokens;
    for (const auto& t : out.tokens) r->generated.push_back(t.token);
    if (out.finish != engine::FinishReason::kNone) {
      release_load_locked(*r);
      migrate = out.finish == engine::FinishReason::kError &&
                out.error.code() == StatusCode::kUnavailable && !r->cancelled;
      if (migrate) {
        r->excluded.push_back(r->worker_id);
        spdlog::warn("router: worker {:x} lost request {} after {} tokens: {}", r->worker_id,
                     r->caller_id, r->generated.size(), out.error.message());
      } else {
        r->done = true;
        requests_.erase(r->caller_id);
      }
    }
  }
  engine::EngineOutput o;
  o.tokens = std::move(out.tokens);
  o.finish = migrate ? engine::FinishReason::kNone : out.finish;
  if (!migrate) o.error = std::move(out.error);
  o.prompt_tokens = static_cast<int>(r->prompt.size());
  o.completion_tokens = static_cast<int>(r->generated.size());
  o.cached_tokens = std::max(0, r->cached_tokens);
  o.kv_transfer = std::move(out.kv_transfer);
  o.prompt_logprobs = std::move(out.prompt_logprobs);
  if (!migrate || !o.tokens.empty() || !o.prompt_logprobs.empty()) r->on_output(std::move(o));
  if (migrate) resubmit(r);
}

void RoutedEngine::finish_migration_failure(const std::shared_ptr<Request>& r,
                                            engine::FinishReason reason, Status error) {
  {
    std::lock_guard lock(mu_);
    r->done = true;
    requests_.erase(r->caller_id);
    if (reason == engine::FinishReason::kError) stats_.migration_failures++;
  }
  engine::EngineOutput o;
  o.finish = reason;
  o.error = std::move(error);
  o.prompt_tokens = static_cast<int>(r->prompt.size());
  o.completion_tokens = static_cast<int>(r->generated.size());
  o.cached_tokens = std::max(0, r->cached_tokens);
  r->on_output(std::move(o));
}

void RoutedEngine::resubmit(const std::shared_ptr<Request>& r) {
  // Caller holds r->mu.
  const int n_gen = static_cast<int>(r->generated.size());
  // max_tokens 0 (prompt scoring) finishes with its only output: lost before it, it runs again.
  if (n_gen >= r->params.max_tokens && r->params.max_tokens > 0) {
    return finish_migration_failure(r, engine::FinishReason::kLength, Status::ok());
  }
  int bs;
  {
    std::lock_guard lock(mu_);
    bs = block_size_;
  }
  std::vector<int32_t> all = r->prompt;
  all.insert(all.end(), r->generated.begin(), r->generated.end());
  const kv::BlockHashes hashes = kv::block_hashes(all, std::max(1, bs));
  for (;;) {
    Result<Choice> choice = internal_error("no routing decision yet");
    {
      std::lock_guard lock(mu_);
      if (r->cancelled) {
        r->done = true;
        requests_.erase(r->caller_id);
        choice = Status{StatusCode::kCancelled, "cancelled"};
      } else if (r->migrations >= options_.migration_limit) {
        choice = Status{StatusCode::kUnavailable,
                        fmt::format("the worker serving this request was lost and the migration "
                                    "limit ({}) is reached",
                                    options_.migration_limit)};
      } else {
        r->migrations++;
        stats_.migrations++;
        if (options_.observer) options_.observer->migrated(MigrationType::kOngoingRequest);
        choice = route_locked(*r, hashes, 0);
        if (!choice) {
          choice = Status{StatusCode::kUnavailable,
                          "the worker serving this request was lost and no other worker is "
                          "available: " +
                              choice.status().message()};
        }
      }
    }
    if (!choice) {
      if (choice.status().code() == StatusCode::kCancelled) {
        engine::EngineOutput o;
        o.finish = engine::FinishReason::kCancelled;
        o.prompt_tokens = static_cast<int>(r->prompt.size());
        o.completion_tokens = n_gen;
        o.cached_tokens = std::max(0, r->cached_tokens);
        r->on_output(std::move(o));
        return;
      }
      spdlog::error("router: request {}: {}", r->caller_id, choice.status().message());
      return finish_migration_failure(r, engine::FinishReason::kError, choice.status());
    }
    Status st = submit_attempt(r, *choice);
    if (st.is_ok()) return;
    {
      std::lock_guard lock(mu_);
      release_load_locked(*r);
      r->excluded.push_back(choice->worker_id);
    }
    spdlog::warn("router: migrating request {} to worker {:x} failed: {}", r->caller_id,
                 choice->worker_id, st.message());
  }
}

void RoutedEngine::cancel(uint64_t id) {
  end_request(id, /*stop=*/false);
}

void RoutedEngine::stop(uint64_t id) {
  end_request(id, /*stop=*/true);
}

void RoutedEngine::end_request(uint64_t id, bool stop) {
  std::shared_ptr<engine::AsyncEngine> engine;
  uint64_t attempt = 0;
  {
    std::lock_guard lock(mu_);
    auto it = requests_.find(id);
    if (it == requests_.end()) return;
    Request& r = *it->second;
    r.cancelled = true;
    auto w = workers_.find(r.worker_id);
    if (w == workers_.end()) return;
    engine = w->second.engine;
    attempt = r.attempt_id;
  }
  if (stop) {
    engine->stop(attempt);
  } else {
    engine->cancel(attempt);
  }
}

void RoutedEngine::shutdown() {
  release_retired();
  std::vector<std::shared_ptr<engine::AsyncEngine>> engines;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [id, w] : workers_) engines.push_back(w.engine);
  }
  for (auto& e : engines) e->shutdown();
}

engine::EngineStats RoutedEngine::stats() const {
  std::vector<std::shared_ptr<engine::AsyncEngine>> engines;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, w] : workers_) engines.push_back(w.engine);
  }
  engine::EngineStats s;
  for (const auto& e : engines) engine::accumulate(s, e->stats());
  return s;
}

int RoutedEngine::max_context() const {
  std::lock_guard lock(mu_);
  int m = 0;
  for (const auto& [id, w] : workers_) {
    const int c = w.engine->max_context();
    m = m == 0 ? c : std::min(m, c);
  }
  return m;
}

int RoutedEngine::num_slots() const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& [id, w] : workers_) n += w.engine->num_slots();
  return n;
}

int RoutedEngine::block_size() const {
  std::lock_guard lock(mu_);
  return block_size_;
}

}  // namespace turbine::router

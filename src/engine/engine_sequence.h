// Engine::Sequence: one request's state on the engine thread. Internal to engine.cpp,
// engine_step.cpp and engine_import.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/engine.h"
#include "kv/block_hash.h"
#include "kv/block_pool.h"
#include "structured/matcher.h"

namespace turbine::engine {

// Invariants: blocks.size() == block_ids.size() >= ceil(n_computed / block_size); blocks
// [0, n_registered) were offered to the prefix cache; hashes cover full blocks of `tokens`.
struct Engine::Sequence {
  EngineRequest req;
  std::vector<int32_t> tokens;  // prompt followed by generated tokens
  int n_prompt = 0;
  int n_computed = 0;  // positions already in the KV blocks
  int n_generated = 0;
  int cached_tokens = -1;  // prompt tokens reused at first admission; -1 before it
  int n_hit = 0;           // prompt tokens reused from the prefix cache at the latest start
  // Backend::clock_ms() when submit() queued it (its TTFT clock) and when its first token came
  // (valid once n_generated > 0); its place in a deadline-ordered queue.
  double arrival_ms = 0;
  double first_token_ms = 0;
  double queue_key = 0;
  std::vector<kv::BlockRef> blocks;
  std::vector<int32_t> block_ids;  // the same blocks, as the backend's block table
  size_t n_registered = 0;
  kv::BlockHashes hashes;
  // The host sampler; none for backends that sample every row (Backend::samples_all_rows).
  std::optional<Sampler> sampler;
  // Leads its prompt group (params.prompt_group): others wait in held_ until its prompt is done.
  bool group_leader = false;
  uint64_t seed = 0;  // the device sampler's: the request's seed, else a random one
  // For backends that sample every row: the prompt's hash, and the ids suppressed before
  // min_tokens (stop ids, and EOS unless ignored).
  uint64_t prompt_hash = 0;
  std::vector<int32_t> suppressed;
  // Prompt logprobs (req.params.prompt_logprobs >= 0): entry i scores prompt token i + 1. Filled
  // in position order (a recomputed position is not scored twice), moved into the first output.
  std::vector<SampledToken> prompt_lp;
  bool prompt_lp_sent = false;
  // Whether this sequence's chunks still need every position's logits: then it reads nothing
  // from the prefix cache (cached positions have no logits) and does not import KV.
  bool wants_prompt_lp() const { return req.params.prompt_logprobs >= 0 && !prompt_lp_sent; }
  // KV import (req.disagg.import): tried once; while fetching, blocks [fetch_first, +fetch_n).
  bool import_tried = false;
  uint64_t fetch_gen = 0;  // non-zero while a fetch is in flight
  int fetch_first = 0;
  int fetch_n = 0;
  std::chrono::steady_clock::time_point fetch_start, fetch_deadline;
  // With a KvLink: the blocks count as arrived at link_arrives; the source answered (and its
  // bytes, if any, are written) once fetch_answered.
  bool fetch_answered = false;
  std::chrono::steady_clock::time_point link_arrives;
  double link_seconds = 0.0;
  // Disaggregated decode with KV tiers: an import first onboards the leading blocks this worker's
  // own tiers hold (one tier load, then the import fetches only the blocks after them); the
  // blocks so onboarded.
  bool import_tier_tried = false;
  int import_tier_blocks = 0;
  // KV tiers: non-zero while a tier load of blocks [tier_first, +tier_n) is in flight (the
  // sequence waits in fetching_ until fetch_deadline).
  uint64_t tier_load_id = 0;
  int tier_first = 0;
  int tier_n = 0;
  int tier_ok = 0;  // with modelled tier links: blocks read back, counted in once they arrive
  // Structured outputs (req.params.constraint): the matcher has accepted every generated token
  // (it survives preemption: recomputation re-prefills tokens already accepted); `mask` is the
  // next token's allowed set, ceil(n_vocab / 32) words, refilled before each sampling.
  std::unique_ptr<structured::Matcher> matcher;
  std::vector<uint32_t> mask;
  // Whether the next token is sampled under `mask`: not without a constraint, and not inside the
  // reasoning of a constraint that starts after it (the CPU and device samplers run unmasked).
  bool masked() const { return matcher && matcher->masks_next(); }
  // The single-byte token of each byte (-1: none), built the first time the budget steers this
  // sequence (engine_step.cpp).
  std::vector<int32_t> byte_tokens;

  Sequence(EngineRequest&& r, int32_t n_vocab, std::span<const int32_t> eos, uint64_t fallback_seed,
           bool host_sampling)
      : req(std::move(r)),
        tokens(req.prompt),
        n_prompt(static_cast<int>(req.prompt.size())),
        seed(req.params.seed.value_or(fallback_seed)) {
    if (host_sampling) {
      sampler.emplace(req.params, req.prompt, n_vocab, eos);
      return;
    }
    prompt_hash = kv::local_block_hash(req.prompt);
    if (req.params.min_tokens > 0) {
      if (!req.params.ignore_eos) suppressed.assign(eos.begin(), eos.end());
      suppressed.insert(suppressed.end(), req.params.stop_token_ids.begin(),
                        req.params.stop_token_ids.end());
    }
  }
};

}  // namespace turbine::engine

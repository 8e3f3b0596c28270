#include "mock/simulated_backend.h"

#include <algorithm>

namespace turbine::mock {

SimulatedBackend::SimulatedBackend(SimulatedBackendOptions options,
                                   std::shared_ptr<SimulatedClock> clock)
    : options_(options), clock_(clock ? std::move(clock) : std::make_shared<SimulatedClock>(0.0)) {}

Status SimulatedBackend::forward(std::span<const engine::SeqChunk>, std::vector<float>&) {
  return unimplemented("the simulated backend computes no logits (forward_sample_all)");
}

double SimulatedBackend::step_ms(std::span<const engine::SeqChunk> chunks) const {
  int64_t kv_tokens = 0;
  int64_t prefill_tokens = 0;
  double prefill_ctx = 0;
  for (const engine::SeqChunk& c : chunks) {
    const auto n = static_cast<int64_t>(c.tokens.size());
    kv_tokens += c.pos + n;
    if (n == 1 && c.want_logits) continue;  // a decode
    prefill_tokens += n;
    prefill_ctx += static_cast<double>(n) * (c.pos + static_cast<double>(n) / 2.0);
  }
  return options_.timing.step_ms(static_cast<int>(chunks.size()), kv_tokens, prefill_tokens,
                                 prefill_ctx);
}

Status SimulatedBackend::forward_sample_all(std::span<const engine::SeqChunk> chunks,
                                            std::span<const engine::SampleRow> rows,
                                            std::vector<engine::SampledToken>& tokens) {
  const double ms = step_ms(chunks);
  clock_->fetch_add(ms);
  last_step_seconds_ = ms / 1000.0;
  const auto wall = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(ms / options_.speedup));
  next_step_at_ = std::max(next_step_at_, Clock::now()) + wall;
  {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, next_step_at_, [&] { return interrupted_; });
  }
  tokens.clear();
  tokens.reserve(rows.size());
  for (const engine::SampleRow& r : rows) tokens.push_back(next_token(r));
  return Status::ok();
}

engine::SampledToken SimulatedBackend::next_token(const engine::SampleRow& row) const {
  const int32_t n_vocab = options_.n_vocab;
  const uint64_t pos = static_cast<uint64_t>(row.n_generated);
  uint64_t x = row.prompt_hash ^ (pos + 1) * 0x9e3779b97f4a7c15ULL;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 29;
  auto id = static_cast<int32_t>(x % static_cast<uint64_t>(n_vocab));
  // Suppressed ids (EOS and stop ids before min_tokens) are skipped, as the sampler masks them.
  for (int tries = 0; tries < n_vocab && !row.suppressed.empty(); ++tries) {
    if (std::find(row.suppressed.begin(), row.suppressed.end(), id) == row.suppressed.end()) break;
    id = (id + 1) % n_vocab;
  }
  // Structured outputs: the first allowed id from the drawn one on (the mask is never empty).
  if (!row.allowed.empty()) {
    auto ok = [&](int32_t t) {
      const auto u = static_cast<size_t>(t);
      return u / 32 < row.allowed.size() && ((row.allowed[u / 32] >> (u % 32)) & 1u) != 0;
    };
    for (int tries = 0; tries < n_vocab && !ok(id); ++tries) id = (id + 1) % n_vocab;
  }
  engine::SampledToken tok;
  tok.token = id;
  const int n_logprobs = row.params ? row.params->n_logprobs : -1;
  if (n_logprobs > 0) {
    tok.top_logprobs.push_back({id, 0.0f});
    for (int k = 1; k < n_logprobs; ++k) tok.top_logprobs.push_back({(id + k) % n_vocab, -20.0f});
  }
  return tok;
}

engine::StepCoefficients SimulatedBackend::step_time_prior() const {
  const MockTiming& t = options_.timing;
  return {t.base_ms, t.per_seq_ms, t.per_kv_token_ms, t.per_prefill_token_ms, t.attention_ms};
}

void SimulatedBackend::interrupt() {
  {
    std::lock_guard lock(mu_);
    interrupted_ = true;
  }
  cv_.notify_all();
}

engine::KvLayout SimulatedBackend::kv_layout() const {
  engine::KvLayout l;
  l.dtype = std::string(engine::kSimulatedKvDtype);
  l.block_size = options_.block_size;
  l.bytes_per_block = options_.kv_bytes_per_token * options_.block_size;
  return l;
}

Status SimulatedBackend::read_kv_blocks(std::span<const int32_t>, std::string&) {
  return Status::ok();  // a simulated block holds no bytes
}

Status SimulatedBackend::write_kv_blocks(std::span<const int32_t>, std::string_view bytes, int) {
  if (!bytes.empty()) return invalid_argument("a simulated KV block holds no bytes");
  return Status::ok();
}

}  // namespace turbine::mock

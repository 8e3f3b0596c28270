#include "engine/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace turbine::engine {

Status SamplingParams::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    return invalid_argument("temperature must be >= 0", "temperature");
  if (!(top_p > 0.0f && top_p <= 1.0f)) return invalid_argument("top_p must be in (0, 1]", "top_p");
  if (!(min_p >= 0.0f && min_p <= 1.0f))
    return invalid_argument("min_p must be in [0, 1]", "min_p");
  if (!(repetition_penalty > 0.0f)) {
    return invalid_argument("repetition_penalty must be > 0", "repetition_penalty");
  }
  if (prompt_logprobs < -1 || prompt_logprobs > 20)
    return invalid_argument("prompt_logprobs must be at most 20", "prompt_logprobs");
  // max_tokens 0: prefill only (echo, prompt scoring); the one output carries the prompt logprobs.
  if (max_tokens < 0) return invalid_argument("max_tokens must be >= 0", "max_tokens");
  if (min_tokens < 0 || min_tokens > max_tokens) {
    return invalid_argument("min_tokens must be in [0, max_tokens]", "min_tokens");
  }
  if (constraint_replay < 0 || (constraint_replay > 0 && !constraint.active())) {
    return invalid_argument("constraint_replay must be 0 without a constraint, else >= 0",
                            "constraint_replay");
  }
  if (constraint.start.active() && !constraint.active()) {
    return invalid_argument("a constraint's start trigger needs a constraint", "constraint");
  }
  if (n_logprobs > 20) return invalid_argument("logprobs must be at most 20", "logprobs");
  for (size_t i = 0; i < logit_bias.size(); ++i) {
    const auto& [id, bias] = logit_bias[i];
    if (id < 0 || !(bias >= -100.0f && bias <= 100.0f) ||
        (i > 0 && logit_bias[i - 1].first >= id)) {
      return invalid_argument(
          "logit_bias must map distinct token ids (sorted) to biases in [-100, 100]", "logit_bias");
    }
  }
  return Status::ok();
}

Sampler::Sampler(const SamplingParams& params, std::span<const int32_t> prompt, int32_t n_vocab,
                 std::span<const int32_t> eos_token_ids)
    : params_(params),
      rng_(params.seed ? *params.seed : std::random_device{}()),
      output_counts_(static_cast<size_t>(n_vocab), 0),
      seen_(static_cast<size_t>(n_vocab), 0) {
  for (int32_t t : prompt) {
    if (t >= 0 && t < n_vocab) seen_[static_cast<size_t>(t)] = 1;
  }
  if (params.min_tokens > 0) {
    auto add = [&](int32_t t) {
      if (t >= 0 && t < n_vocab) min_tokens_suppressed_.push_back(t);
    };
    if (!params.ignore_eos) {
      for (int32_t t : eos_token_ids) add(t);
    }
    for (int32_t t : params.stop_token_ids) add(t);
  }
}

void Sampler::apply_penalties(std::span<float> logits) const {
  const bool rep = params_.repetition_penalty != 1.0f;
  const bool pres = params_.presence_penalty != 0.0f;
  const bool freq = params_.frequency_penalty != 0.0f;
  if (!rep && !pres && !freq) return;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (rep && seen_[i]) {
      logits[i] = logits[i] > 0 ? logits[i] / params_.repetition_penalty
                                : logits[i] * params_.repetition_penalty;
    }
    if (const int32_t c = output_counts_[i]; c > 0) {
      logits[i] -= params_.frequency_penalty * static_cast<float>(c) + params_.presence_penalty;
    }
  }
}

namespace {

// log-softmax value of logits[id] given the max and the log of the partition function.
struct LogSoftmax {
  float max = 0.0f;
  float log_z = 0.0f;
  explicit LogSoftmax(std::span<const float> logits) {
    max = *std::max_element(logits.begin(), logits.end());
    double z = 0.0;
    for (float v : logits) z += std::exp(static_cast<double>(v - max));
    log_z = static_cast<float>(std::log(z));
  }
  float operator()(float v) const { return v - max - log_z; }
};

}  // namespace

SampledToken score_token(std::span<const float> logits, int32_t token, int k) {
  SampledToken out;
  out.token = token;
  if (logits.empty()) return out;
  const LogSoftmax lsm(logits);
  if (token >= 0 && static_cast<size_t>(token) < logits.size())
    out.logprob = lsm(logits[static_cast<size_t>(token)]);
  const size_t n = std::min(logits.size(), static_cast<size_t>(std::max(0, k)));
  if (n == 0) return out;
  // A bounded min-heap of the n best, so that no vocabulary-sized index array is built per row.
  auto better = [&](int32_t a, int32_t b) {
    const float va = logits[static_cast<size_t>(a)], vb = logits[static_cast<size_t>(b)];
    return va > vb || (va == vb && a < b);
  };
  std::vector<int32_t> heap;
  heap.reserve(n + 1);
  for (size_t v = 0; v < logits.size(); ++v) {
    const auto id = static_cast<int32_t>(v);
    if (heap.size() < n) {
      heap.push_back(id);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(id, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = id;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), better);
  out.top_logprobs.reserve(heap.size());
  for (int32_t id : heap) out.top_logprobs.emplace_back(id, lsm(logits[static_cast<size_t>(id)]));
  return out;
}

SampledToken Sampler::sample(std::span<float> logits, std::span<const uint32_t> allowed) {
  SampledToken out;
  const size_t n = logits.size();

  // Logprobs describe the model's own distribution, as vLLM reports them by default.
  std::optional<LogSoftmax> raw_lsm;
  std::vector<float> raw;
  if (params_.n_logprobs >= 0) {
    raw.assign(logits.begin(), logits.end());
    raw_lsm.emplace(raw);
  }

  apply_penalties(logits);
  for (const auto& [id, bias] : params_.logit_bias) {
    if (static_cast<size_t>(id) < n) logits[static_cast<size_t>(id)] += bias;
  }
  if (!allowed.empty()) {
    constexpr float kNeg = -std::numeric_limits<float>::infinity();
    const size_t bits = std::min(n, allowed.size() * 32);
    for (size_t i = 0; i < bits; ++i) {
      if (((allowed[i >> 5] >> (i & 31)) & 1u) == 0) logits[i] = kNeg;
    }
    for (size_t i = bits; i < n; ++i) logits[i] = kNeg;
  }
  if (n_sampled_ < params_.min_tokens) {
    for (int32_t t : min_tokens_suppressed_)
      logits[static_cast<size_t>(t)] = -std::numeric_limits<float>::infinity();
  }

  int32_t chosen = 0;
  if (params_.temperature == 0.0f) {
    chosen = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  } else {
    for (float& v : logits) v /= params_.temperature;
    // Candidates sorted by logit, truncated by top-k, then probabilities for top-p/min-p.
    auto& ids = scratch_ids_;
    ids.resize(n);
    std::iota(ids.begin(), ids.end(), 0);
    size_t k = n;
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
      k = static_cast<size_t>(params_.top_k);
    }
    auto by_logit = [&](int32_t a, int32_t b) {
      return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
             (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
    };
    const bool need_sorted = k < n || params_.top_p < 1.0f || params_.min_p > 0.0f;
    if (need_sorted) {
      std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                        by_logit);
      ids.resize(k);
    }
    const float max_logit = need_sorted ? logits[static_cast<size_t>(ids[0])]
                                        : *std::max_element(logits.begin(), logits.end());
    // Reused across tokens: this runs once per sampled token on the engine thread.
    auto& probs = scratch_probs_;
    probs.resize(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      probs[i] = std::exp(static_cast<double>(logits[static_cast<size_t>(ids[i])] - max_logit));
    }
    size_t keep = ids.size();
    if (params_.min_p > 0.0f) {
      // min-p: drop tokens whose probability is below min_p x the top token's.
      const double floor = params_.min_p * probs[0];
      size_t j = 1;
      while (j < keep && probs[j] >= floor) ++j;
      keep = j;
    }
    if (params_.top_p < 1.0f) {
      // top-p: the smallest prefix of the sorted candidates holding top_p of the kept mass.
      double kept_total = 0.0;
      for (size_t j = 0; j < keep; ++j) kept_total += probs[j];
      double mass = 0.0;
      size_t j = 0;
      while (j < keep) {
        mass += probs[j++];
        if (mass >= params_.top_p * kept_total) break;
      }
      keep = j;
    }
    double total = 0.0;
    for (size_t j = 0; j < keep; ++j) total += probs[j];
    std::uniform_real_distribution<double> uni(0.0, total);
    const double r = uni(rng_);
    double acc = 0.0;
    chosen = ids[keep - 1];
    for (size_t j = 0; j < keep; ++j) {
      acc += probs[j];
      if (r < acc) {
        chosen = ids[j];
        break;
      }
    }
  }

  out.token = chosen;
  if (raw_lsm) {
    out.logprob = (*raw_lsm)(raw[static_cast<size_t>(chosen)]);
    if (params_.n_logprobs > 0) {
      std::vector<int32_t> top(n);
      std::iota(top.begin(), top.end(), 0);
      const size_t k = std::min(n, static_cast<size_t>(params_.n_logprobs));
      std::partial_sort(
          top.begin(), top.begin() + static_cast<std::ptrdiff_t>(k), top.end(),
          [&](int32_t a, int32_t b) {
            return raw[static_cast<size_t>(a)] > raw[static_cast<size_t>(b)] ||
                   (raw[static_cast<size_t>(a)] == raw[static_cast<size_t>(b)] && a < b);
          });
      for (size_t j = 0; j < k; ++j) {
        out.top_logprobs.emplace_back(top[j], (*raw_lsm)(raw[static_cast<size_t>(top[j])]));
      }
    }
  }
  ++n_sampled_;
  output_counts_[static_cast<size_t>(chosen)]++;
  seen_[static_cast<size_t>(chosen)] = 1;
  return out;
}

}  // namespace turbine::engine

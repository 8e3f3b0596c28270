#include "encoder/heads.h"

#include <algorithm>
#include <cmath>

#include "encoder/encoder_math.h"
#include "engine/cpu_kernels.h"

namespace turbine::encoder {
namespace {

// ("B", "PER") for "B-PER", ("I", "PER") for "I-PER", ("I", tag) for anything else.
std::pair<char, std::string_view> split_tag(std::string_view label) {
  if (label.size() >= 2 && (label[0] == 'B' || label[0] == 'I') && label[1] == '-')
    return {label[0], label.substr(2)};
  return {'I', label};
}

}  // namespace

std::vector<float> softmax(const float* logits, int n) {
  std::vector<float> p(logits, logits + n);
  if (n > 0) engine::softmax(p.data(), n);
  return p;
}

Heads::Dense Heads::dense(const Linear& l) {
  Dense d;
  if (!l.w.present()) return d;
  d.w = engine::to_f32(l.w);
  d.b = engine::to_f32(l.b);
  d.out = static_cast<int>(l.w.rows);
  d.in = static_cast<int>(l.w.cols);
  return d;
}

void Heads::Dense::apply(const float* x, int n, float* y) const {
  engine::gemm_f32(x, n, in, w.data(), out, y, out);
  if (!b.empty()) {
    for (int t = 0; t < n; ++t) {
      for (int j = 0; j < out; ++j)
        y[static_cast<size_t>(t) * out + j] += b[static_cast<size_t>(j)];
    }
  }
}

Result<Heads> Heads::create(const EncoderConfig& config, const EncoderWeights& weights) {
  Heads h;
  h.arch_ = config.arch;
  h.act_ = config.classifier_act;
  h.norm_eps_ = config.norm_eps;
  h.labels_ = config.labels;
  h.sequence_output_ = config.mean_pool_classifier ? Output::kMean : Output::kCls;
  h.pooler_ = dense(weights.pooler);
  h.head_dense_ = dense(weights.head_dense);
  h.classifier_ = dense(weights.classifier);
  h.head_norm_w_ = engine::to_f32(weights.head_norm.w);
  h.head_norm_b_ = engine::to_f32(weights.head_norm.b);
  if (config.head != HeadKind::kNone && !h.classifier_.present())
    return invalid_argument("model has no classifier weights", "classifier");
  return h;
}

std::vector<float> Heads::sequence_logits(const float* pooled) const {
  const int d = classifier_.in;
  std::vector<float> a(pooled, pooled + d), b(static_cast<size_t>(d));
  switch (arch_) {
    case EncoderArch::kBert:
      if (pooler_.present()) {
        pooler_.apply(a.data(), 1, b.data());
        activate(b.data(), d, Activation::kTanh);
        a.swap(b);
      }
      break;
    case EncoderArch::kRoberta:
      head_dense_.apply(a.data(), 1, b.data());
      activate(b.data(), d, Activation::kTanh);
      a.swap(b);
      break;
    case EncoderArch::kModernBert:
      head_dense_.apply(a.data(), 1, b.data());
      activate(b.data(), d, act_);
      layer_norm(b.data(), b.data(), head_norm_w_.data(),
                 head_norm_b_.empty() ? nullptr : head_norm_b_.data(), d, norm_eps_);
      a.swap(b);
      break;
    case EncoderArch::kDecoder: break;
  }
  std::vector<float> logits(static_cast<size_t>(classifier_.out));
  classifier_.apply(a.data(), 1, logits.data());
  return logits;
}

std::vector<float> Heads::token_logits(const float* rows, int n) const {
  const int d = classifier_.in;
  std::vector<float> logits(static_cast<size_t>(n) * static_cast<size_t>(classifier_.out));
  if (arch_ == EncoderArch::kModernBert && head_dense_.present()) {
    std::vector<float> h(static_cast<size_t>(n) * static_cast<size_t>(d));
    head_dense_.apply(rows, n, h.data());
    for (int t = 0; t < n; ++t) {
      float* r = h.data() + static_cast<size_t>(t) * d;
      activate(r, d, act_);
      layer_norm(r, r, head_norm_w_.data(), head_norm_b_.empty() ? nullptr : head_norm_b_.data(), d,
                 norm_eps_);
    }
    classifier_.apply(h.data(), n, logits.data());
  } else {
    classifier_.apply(rows, n, logits.data());
  }
  return logits;
}

std::vector<LabelScore> Heads::label_scores(const std::vector<float>& logits) const {
  const std::vector<float> p = softmax(logits.data(), static_cast<int>(logits.size()));
  std::vector<LabelScore> out;
  for (size_t i = 0; i < logits.size(); ++i) {
    out.push_back({static_cast<int32_t>(i),
                   i < labels_.size() ? labels_[i] : "LABEL_" + std::to_string(i), p[i],
                   logits[i]});
  }
  return out;
}

std::vector<TokenPrediction> Heads::token_predictions(const tokenizer::Encoding& e,
                                                      const std::vector<float>& logits,
                                                      const tokenizer::Tokenizer& tok) const {
  std::vector<TokenPrediction> out;
  const int n_labels = classifier_.out;
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.sequence_ids[i] < 0 || tok.is_special(e.ids[i])) continue;
    const std::vector<float> p =
        softmax(logits.data() + i * static_cast<size_t>(n_labels), n_labels);
    const auto best = static_cast<int32_t>(std::max_element(p.begin(), p.end()) - p.begin());
    out.push_back({e.ids[i], best, p[static_cast<size_t>(best)], e.offsets[i]});
  }
  return out;
}

std::vector<Entity> Heads::group_entities(const std::vector<TokenPrediction>& tokens,
                                          std::string_view text,
                                          const tokenizer::Tokenizer& tok) const {
  std::vector<Entity> out;
  std::vector<const TokenPrediction*> group;
  const auto label_of = [&](const TokenPrediction& t) -> std::string_view {
    return labels_[static_cast<size_t>(t.label_id)];
  };
  const auto flush = [&]() {
    if (group.empty()) return;
    Entity e;
    e.label = std::string(split_tag(label_of(*group.front())).second);
    double sum = 0.0;
    std::vector<int32_t> ids;
    for (const TokenPrediction* t : group) {
      sum += t->score;
      ids.push_back(t->token_id);
    }
    e.score = static_cast<float>(sum / static_cast<double>(group.size()));
    e.word = tok.decode(ids, false);
    e.byte_start = group.front()->bytes.begin;
    e.byte_end = group.back()->bytes.end;
    const auto chars = tokenizer::to_char_offsets(text, {{e.byte_start, e.byte_end}});
    e.start = chars[0].begin;
    e.end = chars[0].end;
    group.clear();
    if (e.label != "O") out.push_back(std::move(e));
  };
  for (const TokenPrediction& t : tokens) {
    if (!group.empty()) {
      const auto [bi, tag] = split_tag(label_of(t));
      const auto [last_bi, last_tag] = split_tag(label_of(*group.back()));
      (void)last_bi;
      if (!(tag == last_tag && bi != 'B')) flush();
    }
    group.push_back(&t);
  }
  flush();
  return out;
}

}  // namespace turbine::encoder

#include "encoder/encoder_service.h"

#include <algorithm>
#include <cmath>

#include "encoder/encoder_math.h"

namespace turbine::encoder {
namespace {

std::string input_name(size_t index) {
  return "input[" + std::to_string(index) + "]";
}

}  // namespace

Result<std::unique_ptr<EncoderService>> EncoderService::load(const std::filesystem::path& dir,
                                                             const EncoderServiceOptions& options) {
  TURBINE_RETURN_IF_ERROR(options.engine.validate());
  TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<EncoderModel> model, EncoderModel::load(dir));
  std::shared_ptr<const EncoderModel> shared(std::move(model));
  TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<EncoderBackend> backend,
                           make_encoder_backend(*shared, options.backend));
  return std::make_unique<EncoderService>(std::move(shared), std::move(backend), options);
}

EncoderService::EncoderService(std::shared_ptr<const EncoderModel> model,
                               std::unique_ptr<EncoderBackend> backend,
                               const EncoderServiceOptions& options)
    : model_(std::move(model)),
      options_(options),
      engine_(std::move(backend), options.engine),
      max_tokens_(std::min(model_->max_tokens(), engine_.max_tokens())) {}

Status EncoderService::check_count(size_t n) const {
  if (n == 0) return invalid_argument("input must not be empty", "input");
  if (n > options_.max_inputs) {
    return invalid_argument("too many inputs: " + std::to_string(n) + " (at most " +
                                std::to_string(options_.max_inputs) + ")",
                            "input");
  }
  return Status::ok();
}

Status EncoderService::require(EncoderTask task, const char* what) const {
  const EncoderTask have = model_->task();
  const bool ok =
      have == task || (task == EncoderTask::kClassification && have == EncoderTask::kScore);
  if (ok) return Status::ok();
  return invalid_argument(
      "model '" + model_->name() + "' is a " + task_name(have) + " model; it cannot " + what,
      "model");
}

Result<tokenizer::Encoding> EncoderService::encode(std::string_view text,
                                                   std::optional<std::string_view> pair,
                                                   const EncodeOptions& options,
                                                   size_t index) const {
  if (text.empty() || (pair && pair->empty()))
    return invalid_argument(input_name(index) + " is empty", "input");
  const tokenizer::PipelineTokenizer& tok = model_->tokenizer();
  tokenizer::EncodeOptions eo;
  if (options.truncate_tokens > 0) {
    eo.max_length = static_cast<size_t>(std::min(options.truncate_tokens, max_tokens_));
  } else if (options.truncate) {
    eo.max_length = static_cast<size_t>(max_tokens_);
  }
  tokenizer::Encoding e = tok.encode(text, pair, eo);
  if (e.size() == 0) return invalid_argument(input_name(index) + " has no tokens", "input");
  if (e.size() > static_cast<size_t>(max_tokens_)) {
    return invalid_argument(input_name(index) + " has " + std::to_string(e.size()) +
                                " tokens, more than the model's maximum of " +
                                std::to_string(max_tokens_) + " (ask for truncation to cut it)",
                            "input");
  }
  return e;
}

EncodeJob EncoderService::job(const tokenizer::Encoding& e, Output output) const {
  EncodeJob j;
  j.ids = e.ids;
  if (model_->config().type_vocab_size > 1) j.type_ids = e.type_ids;
  j.output = output;
  return j;
}

Result<std::vector<Embedding>> EncoderService::pool(std::vector<EncodeJob> jobs,
                                                    const EncodeOptions& options) {
  std::vector<int> n_tokens;
  for (const EncodeJob& j : jobs) n_tokens.push_back(static_cast<int>(j.ids.size()));
  std::vector<EncodeResult> results = engine_.run(std::move(jobs));
  const bool normalize = options.normalize.value_or(model_->pooling().normalize);
  std::vector<Embedding> out;
  out.reserve(results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].has_value()) return results[i].status();
    Embedding e;
    e.vector = std::move(results[i]).value();
    e.n_tokens = n_tokens[i];
    if (normalize) l2_normalize(e.vector.data(), static_cast<int>(e.vector.size()));
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<Embedding>> EncoderService::embed(const std::vector<std::string>& texts,
                                                     const EncodeOptions& options) {
  TURBINE_RETURN_IF_ERROR(require(EncoderTask::kEmbedding, "embed"));
  TURBINE_RETURN_IF_ERROR(check_count(texts.size()));
  std::vector<EncodeJob> jobs;
  for (size_t i = 0; i < texts.size(); ++i) {
    TURBINE_ASSIGN_OR_RETURN(tokenizer::Encoding e, encode(texts[i], std::nullopt, options, i));
    jobs.push_back(job(e, model_->pooling().mode));
  }
  return pool(std::move(jobs), options);
}

Result<std::vector<Embedding>> EncoderService::embed_tokens(
    const std::vector<std::vector<int32_t>>& inputs, const EncodeOptions& options) {
  TURBINE_RETURN_IF_ERROR(require(EncoderTask::kEmbedding, "embed"));
  TURBINE_RETURN_IF_ERROR(check_count(inputs.size()));
  std::vector<EncodeJob> jobs;
  const int vocab = model_->config().vocab_size;
  for (size_t i = 0; i < inputs.size(); ++i) {
    EncodeJob j;
    j.ids = inputs[i];
    j.output = model_->pooling().mode;
    if (j.ids.empty()) return invalid_argument(input_name(i) + " is empty", "input");
    for (int32_t id : j.ids) {
      if (id < 0 || id >= vocab)
        return invalid_argument(input_name(i) + ": token id " + std::to_string(id) +
                                    " is out of range [0, " + std::to_string(vocab) + ")",
                                "input");
    }
    size_t limit = static_cast<size_t>(max_tokens_);
    if (options.truncate_tokens > 0)
      limit = std::min(limit, static_cast<size_t>(options.truncate_tokens));
    if (j.ids.size() > limit) {
      if (!options.truncate && options.truncate_tokens <= 0) {
        return invalid_argument(input_name(i) + " has " + std::to_string(j.ids.size()) +
                                    " tokens, more than the model's maximum of " +
                                    std::to_string(max_tokens_),
                                "input");
      }
      j.ids.resize(limit);
    }
    jobs.push_back(std::move(j));
  }
  return pool(std::move(jobs), options);
}

Result<std::vector<Classification>> EncoderService::classify(const std::vector<std::string>& texts,
                                                             const EncodeOptions& options) {
  TURBINE_RETURN_IF_ERROR(require(EncoderTask::kClassification, "classify texts"));
  TURBINE_RETURN_IF_ERROR(check_count(texts.size()));
  std::vector<EncodeJob> jobs;
  std::vector<int> n_tokens;
  for (size_t i = 0; i < texts.size(); ++i) {
    TURBINE_ASSIGN_OR_RETURN(tokenizer::Encoding e, encode(texts[i], std::nullopt, options, i));
    n_tokens.push_back(static_cast<int>(e.size()));
    jobs.push_back(job(e, model_->heads().sequence_output()));
  }
  std::vector<EncodeResult> results = engine_.run(std::move(jobs));
  std::vector<Classification> out;
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].has_value()) return results[i].status();
    Classification c;
    c.labels = model_->heads().label_scores(model_->heads().sequence_logits(results[i]->data()));
    for (const LabelScore& l : c.labels) {
      if (l.probability > c.labels[static_cast<size_t>(c.top)].probability) c.top = l.id;
    }
    c.n_tokens = n_tokens[i];
    out.push_back(std::move(c));
  }
  return out;
}

Result<TokenClassification> EncoderService::classify_tokens(std::string_view text,
                                                            const EncodeOptions& options) {
  TURBINE_RETURN_IF_ERROR(require(EncoderTask::kTokenClassification, "classify tokens"));
  TURBINE_ASSIGN_OR_RETURN(tokenizer::Encoding e, encode(text, std::nullopt, options, 0));
  std::vector<EncodeJob> jobs;
  jobs.push_back(job(e, Output::kAllTokens));
  std::vector<EncodeResult> results = engine_.run(std::move(jobs));
  if (!results[0].has_value()) return results[0].status();
  const Heads& heads = model_->heads();
  const std::vector<float> logits =
      heads.token_logits(results[0]->data(), static_cast<int>(e.size()));
  TokenClassification out;
  out.tokens = heads.token_predictions(e, logits, model_->tokenizer());
  out.entities = heads.group_entities(out.tokens, text, model_->tokenizer());
  out.n_tokens = static_cast<int>(e.size());
  return out;
}

Result<std::vector<Relevance>> EncoderService::score(std::string_view query,
                                                     const std::vector<std::string>& documents,
                                                     const EncodeOptions& options) {
  const EncoderTask task = model_->task();
  if (task != EncoderTask::kScore && task != EncoderTask::kEmbedding) {
    return invalid_argument("model '" + model_->name() + "' is a " + task_name(task) +
                                " model; it cannot score documents",
                            "model");
  }
  TURBINE_RETURN_IF_ERROR(check_count(documents.size()));
  if (query.empty()) return invalid_argument("query is empty", "query");
  std::vector<Relevance> out;
  if (task == EncoderTask::kScore) {
    std::vector<EncodeJob> jobs;
    for (size_t i = 0; i < documents.size(); ++i) {
      TURBINE_ASSIGN_OR_RETURN(tokenizer::Encoding e, encode(query, documents[i], options, i));
      jobs.push_back(job(e, model_->heads().sequence_output()));
      out.push_back({0.0f, 0.0f, static_cast<int>(e.size())});
    }
    std::vector<EncodeResult> results = engine_.run(std::move(jobs));
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].has_value()) return results[i].status();
      const float logit = model_->heads().sequence_logits(results[i]->data())[0];
      out[i].logit = logit;
      out[i].score = 1.0f / (1.0f + std::exp(-logit));
    }
    return out;
  }
  // Bi-encoder: cosine similarity of the query's and each document's embedding.
  std::vector<EncodeJob> jobs;
  for (size_t i = 0; i <= documents.size(); ++i) {
    const std::string_view text = i == 0 ? query : std::string_view(documents[i - 1]);
    TURBINE_ASSIGN_OR_RETURN(tokenizer::Encoding e, encode(text, std::nullopt, options, i));
    jobs.push_back(job(e, model_->pooling().mode));
  }
  EncodeOptions o = options;
  o.normalize = true;
  TURBINE_ASSIGN_OR_RETURN(std::vector<Embedding> emb, pool(std::move(jobs), o));
  for (size_t i = 1; i < emb.size(); ++i) {
    float dot = 0.0f;
    for (size_t j = 0; j < emb[0].vector.size(); ++j) dot += emb[0].vector[j] * emb[i].vector[j];
    out.push_back({dot, dot, emb[0].n_tokens + emb[i].n_tokens});
  }
  return out;
}

}  // namespace turbine::encoder

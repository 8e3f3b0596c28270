#include "encoder/encoder_service.h"

#include <algorithm>
#include <cmath>
#include <future>

#include "encoder/encoder_math.h"

namespace turbine::encoder {
namespace {

std::string input_name(const std::string& field, size_t index) {
  return field + "[" + std::to_string(index) + "]";
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

struct EncoderService::Call {
  EncoderRequest request;
  EncoderCallback done;
  std::vector<EncodeJob> jobs;                    // handed to the engine by submit()
  std::vector<int> n_tokens;                      // per job
  std::vector<tokenizer::Encoding> encodings;     // kClassifyTokens: per text
  std::vector<std::optional<EncodeResult>> rows;  // per job, filled on the engine thread
  size_t n_queries = 0;  // kScore with an embedding model: query jobs first
  std::atomic<size_t> remaining{0};
};

EncoderService::~EncoderService() {
  shutdown();
}

void EncoderService::shutdown() {
  shut_down_ = true;
  engine_.shutdown();
}

EncoderInfo EncoderService::info() const {
  EncoderInfo i;
  i.task = model_->task();
  i.hidden_dim = model_->hidden_dim();
  i.max_tokens = max_tokens_;
  i.max_inputs = options_.max_inputs;
  i.labels = model_->config().labels;
  return i;
}

Status EncoderService::check_count(size_t n, const std::string& field) const {
  if (n == 0) return invalid_argument(field + " must not be empty", field);
  if (n > options_.max_inputs) {
    return invalid_argument("too many inputs in " + field + ": " + std::to_string(n) +
                                " (at most " + std::to_string(options_.max_inputs) + ")",
                            field);
  }
  return Status::ok();
}

Result<tokenizer::Encoding> EncoderService::encode(std::string_view text,
                                                   std::optional<std::string_view> pair,
                                                   const EncodeOptions& options,
                                                   const std::string& name,
                                                   const char* field) const {
  if (text.empty() || (pair && pair->empty())) return invalid_argument(name + " is empty", field);
  const tokenizer::PipelineTokenizer& tok = model_->tokenizer();
  tokenizer::EncodeOptions eo;
  if (options.truncate_tokens > 0) {
    eo.max_length = static_cast<size_t>(std::min(options.truncate_tokens, max_tokens_));
  } else if (options.truncate) {
    eo.max_length = static_cast<size_t>(max_tokens_);
  }
  tokenizer::Encoding e = tok.encode(text, pair, eo);
  if (e.size() == 0) return invalid_argument(name + " has no tokens", field);
  if (e.size() > static_cast<size_t>(max_tokens_)) {
    return invalid_argument(name + " has " + std::to_string(e.size()) +
                                " tokens, more than the model's maximum of " +
                                std::to_string(max_tokens_) +
                                " (ask for truncation, e.g. truncate_prompt_tokens, to cut it)",
                            field);
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

Result<EncodeJob> EncoderService::token_job(const std::vector<int32_t>& ids,
                                            const EncodeOptions& options,
                                            const std::string& name) const {
  EncodeJob j;
  j.ids = ids;
  j.output = model_->pooling().mode;
  if (j.ids.empty()) return invalid_argument(name + " is empty", "input");
  const int vocab = model_->config().vocab_size;
  for (int32_t id : j.ids) {
    if (id < 0 || id >= vocab)
      return invalid_argument(name + ": token id " + std::to_string(id) + " is out of range [0, " +
                                  std::to_string(vocab) + ")",
                              "input");
  }
  size_t limit = static_cast<size_t>(max_tokens_);
  if (options.truncate_tokens > 0)
    limit = std::min(limit, static_cast<size_t>(options.truncate_tokens));
  if (j.ids.size() > limit) {
    if (!options.truncate && options.truncate_tokens <= 0) {
      return invalid_argument(name + " has " + std::to_string(j.ids.size()) +
                                  " tokens, more than the model's maximum of " +
                                  std::to_string(max_tokens_),
                              "input");
    }
    j.ids.resize(limit);
  }
  return j;
}

Status EncoderService::prepare(Call& call) const {
  const EncoderRequest& r = call.request;
  TURBINE_RETURN_IF_ERROR(check_op(model_->task(), r.op, model_->name()));
  TURBINE_RETURN_IF_ERROR(check_count(r.n_inputs(), r.input_field));
  const EncodeOptions& o = r.options;
  if (o.truncate_tokens < 0)
    return invalid_argument("truncate_tokens must not be negative", "truncate_prompt_tokens");
  if (o.dimensions < 0 || o.dimensions > model_->hidden_dim()) {
    return invalid_argument("dimensions must be in [1, " + std::to_string(model_->hidden_dim()) +
                                "] for this model, not " + std::to_string(o.dimensions),
                            "dimensions");
  }
  if (!r.token_inputs.empty() && r.op != EncoderOp::kEmbed)
    return invalid_argument("token id inputs are only accepted for embeddings", "input");
  auto add = [&](EncodeJob j) {
    call.n_tokens.push_back(static_cast<int>(j.ids.size()));
    call.jobs.push_back(std::move(j));
  };
  switch (r.op) {
    case EncoderOp::kEmbed:
      if (!r.token_inputs.empty()) {
        for (size_t i = 0; i < r.token_inputs.size(); ++i) {
          TURBINE_ASSIGN_OR_RETURN(EncodeJob j,
                                   token_job(r.token_inputs[i], o, input_name(r.input_field, i)));
          add(std::move(j));
        }
      } else {
        for (size_t i = 0; i < r.texts.size(); ++i) {
          TURBINE_ASSIGN_OR_RETURN(tokenizer::Encoding e,
                                   encode(r.texts[i], std::nullopt, o, input_name(r.input_field, i),
                                          r.input_field.c_str()));
          add(job(e, model_->pooling().mode));
        }
      }
      break;
    case EncoderOp::kClassify:
      for (size_t i = 0; i < r.texts.size(); ++i) {
        TURBINE_ASSIGN_OR_RETURN(tokenizer::Encoding e,
                                 encode(r.texts[i], std::nullopt, o, input_name(r.input_field, i),
                                        r.input_field.c_str()));
        add(job(e, model_->heads().sequence_output()));
      }
      break;
    case EncoderOp::kClassifyTokens:
      for (size_t i = 0; i < r.texts.size(); ++i) {
        TURBINE_ASSIGN_OR_RETURN(tokenizer::Encoding e,
                                 encode(r.texts[i], std::nullopt, o, input_name(r.input_field, i),
                                        r.input_field.c_str()));
        add(job(e, Output::kAllTokens));
        call.encodings.push_back(std::move(e));
      }
      break;
    case EncoderOp::kScore: {
      if (r.queries.size() != 1 && r.queries.size() != r.texts.size()) {
        return invalid_argument("score: give one query, or one per document (" +
                                    std::to_string(r.texts.size()) + "), not " +
                                    std::to_string(r.queries.size()),
                                r.query_field);
      }
      for (size_t q = 0; q < r.queries.size(); ++q) {
        if (r.queries[q].empty())
          return invalid_argument(r.query_field + " is empty", r.query_field);
      }
      if (model_->task() == EncoderTask::kScore) {
        for (size_t i = 0; i < r.texts.size(); ++i) {
          const std::string& q = r.queries[r.queries.size() == 1 ? 0 : i];
          TURBINE_ASSIGN_OR_RETURN(
              tokenizer::Encoding e,
              encode(q, r.texts[i], o, input_name(r.input_field, i), r.input_field.c_str()));
          add(job(e, model_->heads().sequence_output()));
        }
      } else {
        // Bi-encoder: the queries' embeddings, then the documents'.
        for (size_t q = 0; q < r.queries.size(); ++q) {
          const std::string name =
              r.queries.size() == 1 ? r.query_field : input_name(r.query_field, q);
          TURBINE_ASSIGN_OR_RETURN(tokenizer::Encoding e, encode(r.queries[q], std::nullopt, o,
                                                                 name, r.query_field.c_str()));
          add(job(e, model_->pooling().mode));
        }
        call.n_queries = r.queries.size();
        for (size_t i = 0; i < r.texts.size(); ++i) {
          TURBINE_ASSIGN_OR_RETURN(tokenizer::Encoding e,
                                   encode(r.texts[i], std::nullopt, o, input_name(r.input_field, i),
                                          r.input_field.c_str()));
          add(job(e, model_->pooling().mode));
        }
      }
      break;
    }
  }
  return Status::ok();
}

void EncoderService::submit(EncoderRequest request, EncoderCallback done) {
  if (shut_down_) {
    done(Status(StatusCode::kUnavailable, "the encoder is shutting down"));
    return;
  }
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  if (Status st = prepare(*call); !st.is_ok()) {
    done(std::move(st));
    return;
  }
  call->done = std::move(done);
  const size_t n = call->jobs.size();
  call->rows.resize(n);
  call->remaining = n;
  in_flight_++;
  std::vector<EncodeJob> jobs = std::move(call->jobs);
  for (size_t i = 0; i < n; ++i) {
    engine_.submit(std::move(jobs[i]), [this, call, i](EncodeResult r) {
      call->rows[i].emplace(std::move(r));
      if (call->remaining.fetch_sub(1) == 1) finish(*call);
    });
  }
}

void EncoderService::finish(Call& call) {
  Result<EncoderResponse> response = respond(call);
  EncoderCallback done = std::move(call.done);
  in_flight_--;
  done(std::move(response));
}

Embedding EncoderService::pooled(std::vector<float> row, int n_tokens,
                                 const EncodeOptions& options) const {
  Embedding e;
  e.vector = std::move(row);
  e.n_tokens = n_tokens;
  if (options.dimensions > 0 && static_cast<size_t>(options.dimensions) < e.vector.size())
    e.vector.resize(static_cast<size_t>(options.dimensions));
  if (options.normalize.value_or(model_->pooling().normalize))
    l2_normalize(e.vector.data(), static_cast<int>(e.vector.size()));
  return e;
}

Result<EncoderResponse> EncoderService::respond(Call& call) const {
  for (const auto& r : call.rows) {
    if (!r->has_value()) return r->status();
  }
  const EncoderRequest& req = call.request;
  const Heads& heads = model_->heads();
  auto rows = [&](size_t i) -> std::vector<float>& { return call.rows[i]->value(); };
  EncoderResponse out;
  switch (req.op) {
    case EncoderOp::kEmbed:
      for (size_t i = 0; i < call.rows.size(); ++i)
        out.embeddings.push_back(pooled(std::move(rows(i)), call.n_tokens[i], req.options));
      break;
    case EncoderOp::kClassify:
      for (size_t i = 0; i < call.rows.size(); ++i) {
        Classification c;
        c.labels = heads.label_scores(heads.sequence_logits(rows(i).data()));
        for (const LabelScore& l : c.labels) {
          if (l.probability > c.labels[static_cast<size_t>(c.top)].probability) c.top = l.id;
        }
        c.n_tokens = call.n_tokens[i];
        out.classifications.push_back(std::move(c));
      }
      break;
    case EncoderOp::kClassifyTokens:
      for (size_t i = 0; i < call.rows.size(); ++i) {
        const tokenizer::Encoding& e = call.encodings[i];
        const std::vector<float> logits =
            heads.token_logits(rows(i).data(), static_cast<int>(e.size()));
        TokenClassification t;
        t.tokens = heads.token_predictions(e, logits, model_->tokenizer());
        t.entities = heads.group_entities(t.tokens, req.texts[i], model_->tokenizer());
        t.n_tokens = static_cast<int>(e.size());
        out.token_classifications.push_back(std::move(t));
      }
      break;
    case EncoderOp::kScore:
      if (model_->task() == EncoderTask::kScore) {
        for (size_t i = 0; i < call.rows.size(); ++i) {
          const float logit = heads.sequence_logits(rows(i).data())[0];
          out.scores.push_back({1.0f / (1.0f + std::exp(-logit)), logit, call.n_tokens[i]});
        }
      } else {
        EncodeOptions unit;
        unit.normalize = true;
        std::vector<Embedding> q;
        for (size_t i = 0; i < call.n_queries; ++i)
          q.push_back(pooled(std::move(rows(i)), call.n_tokens[i], unit));
        for (size_t i = call.n_queries; i < call.rows.size(); ++i) {
          const Embedding d = pooled(std::move(rows(i)), call.n_tokens[i], unit);
          const Embedding& qe = q[q.size() == 1 ? 0 : i - call.n_queries];
          float dot = 0.0f;
          for (size_t j = 0; j < d.vector.size(); ++j) dot += qe.vector[j] * d.vector[j];
          out.scores.push_back({dot, dot, qe.n_tokens + d.n_tokens});
        }
      }
      break;
  }
  return out;
}

Result<EncoderResponse> EncoderService::run(EncoderRequest request) {
  std::promise<Result<EncoderResponse>> p;
  auto f = p.get_future();
  submit(std::move(request), [&p](Result<EncoderResponse> r) { p.set_value(std::move(r)); });
  return f.get();
}

Result<std::vector<Embedding>> EncoderService::embed(const std::vector<std::string>& texts,
                                                     const EncodeOptions& options) {
  EncoderRequest r;
  r.op = EncoderOp::kEmbed;
  r.texts = texts;
  r.options = options;
  TURBINE_ASSIGN_OR_RETURN(EncoderResponse out, run(std::move(r)));
  return std::move(out.embeddings);
}

Result<std::vector<Embedding>> EncoderService::embed_tokens(
    const std::vector<std::vector<int32_t>>& inputs, const EncodeOptions& options) {
  EncoderRequest r;
  r.op = EncoderOp::kEmbed;
  r.token_inputs = inputs;
  r.options = options;
  if (inputs.empty()) return invalid_argument("input must not be empty", "input");
  TURBINE_ASSIGN_OR_RETURN(EncoderResponse out, run(std::move(r)));
  return std::move(out.embeddings);
}

Result<std::vector<Classification>> EncoderService::classify(const std::vector<std::string>& texts,
                                                             const EncodeOptions& options) {
  EncoderRequest r;
  r.op = EncoderOp::kClassify;
  r.texts = texts;
  r.options = options;
  TURBINE_ASSIGN_OR_RETURN(EncoderResponse out, run(std::move(r)));
  return std::move(out.classifications);
}

Result<TokenClassification> EncoderService::classify_tokens(std::string_view text,
                                                            const EncodeOptions& options) {
  EncoderRequest r;
  r.op = EncoderOp::kClassifyTokens;
  r.texts.emplace_back(text);
  r.options = options;
  TURBINE_ASSIGN_OR_RETURN(EncoderResponse out, run(std::move(r)));
  return std::move(out.token_classifications.at(0));
}

Result<std::vector<Relevance>> EncoderService::score(std::string_view query,
                                                     const std::vector<std::string>& documents,
                                                     const EncodeOptions& options) {
  EncoderRequest r;
  r.op = EncoderOp::kScore;
  r.queries.emplace_back(query);
  r.texts = documents;
  r.options = options;
  TURBINE_ASSIGN_OR_RETURN(EncoderResponse out, run(std::move(r)));
  return std::move(out.scores);
}

}  // namespace turbine::encoder

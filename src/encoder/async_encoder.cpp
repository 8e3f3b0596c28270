#include "encoder/async_encoder.h"

namespace turbine::encoder {

const char* task_name(EncoderTask task) {
  switch (task) {
    case EncoderTask::kEmbedding: return "embedding";
    case EncoderTask::kClassification: return "classification";
    case EncoderTask::kTokenClassification: return "token_classification";
    case EncoderTask::kScore: return "score";
  }
  return "?";
}

Result<EncoderTask> task_from_name(std::string_view name) {
  for (EncoderTask t : {EncoderTask::kEmbedding, EncoderTask::kClassification,
                        EncoderTask::kTokenClassification, EncoderTask::kScore}) {
    if (name == task_name(t)) return t;
  }
  return invalid_argument("unknown encoder task '" + std::string(name) + "'", "task");
}

const char* op_name(EncoderOp op) {
  switch (op) {
    case EncoderOp::kEmbed: return "embed";
    case EncoderOp::kClassify: return "classify";
    case EncoderOp::kClassifyTokens: return "classify tokens";
    case EncoderOp::kScore: return "score";
  }
  return "?";
}

int64_t EncoderResponse::prompt_tokens() const {
  int64_t n = 0;
  for (const Embedding& e : embeddings) n += e.n_tokens;
  for (const Classification& c : classifications) n += c.n_tokens;
  for (const TokenClassification& t : token_classifications) n += t.n_tokens;
  for (const Relevance& r : scores) n += r.n_tokens;
  return n;
}

Status check_op(EncoderTask task, EncoderOp op, const std::string& model_name) {
  bool ok = false;
  const char* what = "";
  switch (op) {
    case EncoderOp::kEmbed:
      ok = task == EncoderTask::kEmbedding;
      what = "embed texts";
      break;
    case EncoderOp::kClassify:
      ok = task == EncoderTask::kClassification || task == EncoderTask::kScore;
      what = "classify texts";
      break;
    case EncoderOp::kClassifyTokens:
      ok = task == EncoderTask::kTokenClassification;
      what = "classify tokens";
      break;
    case EncoderOp::kScore:
      ok = task == EncoderTask::kScore || task == EncoderTask::kEmbedding;
      what = "score documents";
      break;
  }
  if (ok) return Status::ok();
  return invalid_argument(
      "model '" + model_name + "' is a " + task_name(task) + " model; it cannot " + what, "model");
}

}  // namespace turbine::encoder

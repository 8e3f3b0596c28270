#include "encoder/encoder_model.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "encoder/cpu_encoder_backend.h"
#include "encoder/decoder_embed_backend.h"

namespace turbine::encoder {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Result<json> read_json(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return not_found(p.filename().string() + ": cannot open " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return invalid_argument(p.filename().string() + ": invalid JSON");
  return j;
}

// Prefixes a load error with the folder it is about.
Status in_folder(const std::string& name, const Status& s) {
  return Status(s.code(), name + ": " + s.message(), s.field());
}

}  // namespace

bool is_encoder_folder(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec) || !fs::exists(dir / "config.json", ec)) return false;
  auto j = read_json(dir / "config.json");
  if (!j.has_value()) return false;
  auto c = parse_encoder_config(*j);
  if (!c.has_value()) return false;
  if (c->arch != EncoderArch::kDecoder) return true;
  return fs::exists(dir / "modules.json", ec);
}

int EncoderModel::max_tokens() const {
  int n = decoder_ ? decoder_->config().max_context : config_.max_tokens();
  if (pooling_.max_seq_length > 0) n = std::min(n, pooling_.max_seq_length);
  return n;
}

Result<std::unique_ptr<EncoderModel>> EncoderModel::load(const fs::path& dir_in) {
  fs::path dir = dir_in.lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  std::unique_ptr<EncoderModel> m(new EncoderModel());
  m->path_ = dir;
  m->name_ = dir.filename().string();
  const std::string& name = m->name_;

  auto config_json = read_json(dir / "config.json");
  if (!config_json.has_value()) return in_folder(name, config_json.status());
  auto config = parse_encoder_config(*config_json);
  if (!config.has_value()) return in_folder(name, config.status());
  m->config_ = std::move(config).value();
  const EncoderConfig& c = m->config_;

  std::error_code ec;
  if (!fs::exists(dir / "tokenizer.json", ec))
    return not_found(name + ": no tokenizer.json (encoder models need one)", "tokenizer_json");
  const fs::path tokenizer_config =
      fs::exists(dir / "tokenizer_config.json", ec) ? dir / "tokenizer_config.json" : fs::path();
  auto tok = tokenizer::PipelineTokenizer::from_files(dir / "tokenizer.json", tokenizer_config);
  if (!tok.has_value()) return in_folder(name, tok.status());
  m->tokenizer_ = std::move(tok).value();

  auto pooling = read_pooling_config(dir, c);
  if (!pooling.has_value()) return in_folder(name, pooling.status());
  m->pooling_ = *pooling;

  if (c.arch == EncoderArch::kDecoder) {
    auto decoder = model::load_model(dir);
    if (!decoder.has_value()) return in_folder(name, decoder.status());
    m->decoder_ = std::move(decoder).value();
    m->config_.dim = m->decoder_->config().dim;
  } else {
    auto files = EncoderWeightFiles::load(dir, c);
    if (!files.has_value()) return in_folder(name, files.status());
    m->files_ = std::move(files).value();
    auto heads = Heads::create(c, m->files_->weights());
    if (!heads.has_value()) return in_folder(name, heads.status());
    m->heads_ = std::move(heads).value();
  }
  if (m->tokenizer_->vocab_size() > c.vocab_size) {
    return invalid_argument(name + ": tokenizer has " +
                                std::to_string(m->tokenizer_->vocab_size()) +
                                " tokens, the model's vocabulary " + std::to_string(c.vocab_size),
                            "vocab_size");
  }
  switch (c.head) {
    case HeadKind::kNone: m->task_ = EncoderTask::kEmbedding; break;
    case HeadKind::kSequenceClassification:
      m->task_ = c.labels.size() == 1 ? EncoderTask::kScore : EncoderTask::kClassification;
      break;
    case HeadKind::kTokenClassification: m->task_ = EncoderTask::kTokenClassification; break;
  }
  return m;
}

Result<std::unique_ptr<EncoderBackend>> make_encoder_backend(const EncoderModel& model,
                                                             const EncoderBackendOptions& options) {
  if (model.decoder() != nullptr) {
    return make_decoder_embed_backend(*model.decoder(), options.n_threads,
                                      options.max_batch_tokens);
  }
  CpuEncoderOptions o;
  o.n_threads = options.n_threads;
  return make_cpu_encoder_backend(model.config(), *model.weights(), o);
}

}  // namespace turbine::encoder

#include "tokenizer/hf_tokenizer.h"

#include <algorithm>

#include "tokenizer/tokenizer_json.h"
#include "tokenizer/utf8.h"

namespace turbine::tokenizer {
namespace {

using nlohmann::json;

// Pre-tokenizer regexes of the GGUF "gpt2" vocabularies, by tokenizer.ggml.pre.
constexpr const char* kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

std::string_view trim_js_whitespace(std::string_view s, bool left, bool right) {
  if (left) {
    while (!s.empty()) {
      size_t i = 0;
      if (!is_js_whitespace(next_code_point(s, i))) break;
      s.remove_prefix(i);
    }
  }
  if (right) {
    while (!s.empty()) {
      size_t start = s.size() - 1;
      while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
      size_t i = start;
      if (!is_js_whitespace(next_code_point(s, i))) break;
      s.remove_suffix(s.size() - start);
    }
  }
  return s;
}

}  // namespace

HfTokenizer::HfTokenizer() = default;
HfTokenizer::~HfTokenizer() = default;

void HfTokenizer::split_added(std::string_view text, const AddedTokenTrie& trie,
                              std::vector<Section>& out) const {
  size_t start = 0;
  size_t i = 0;
  const size_t first_out = out.size();
  while (i < text.size()) {
    size_t match_end = 0;
    const int32_t match = trie.may_start(text[i]) ? trie.match(text, i, match_end) : -1;
    if (match < 0) {
      ++i;
      continue;
    }
    if (i > start) out.push_back({text.substr(start, i - start), -1});
    out.push_back({text.substr(i, match_end - i), match});
    i = match_end;
    start = i;
  }
  if (start < text.size()) out.push_back({text.substr(start), -1});
  // lstrip / rstrip trim the whitespace of the neighbouring text (tokenizers.js semantics).
  for (size_t k = first_out; k < out.size(); ++k) {
    if (out[k].added < 0) continue;
    const AddedToken& t = added_[out[k].added];
    if (t.lstrip && k > first_out && out[k - 1].added < 0) {
      out[k - 1].text = trim_js_whitespace(out[k - 1].text, false, true);
    }
    if (t.rstrip && k + 1 < out.size() && out[k + 1].added < 0) {
      out[k + 1].text = trim_js_whitespace(out[k + 1].text, true, false);
    }
  }
}

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::build(const json& tok, const json& config) {
  std::unique_ptr<HfTokenizer> t(new HfTokenizer());
  if (!tok.is_object()) return invalid_argument("tokenizer.json: expected an object");
  const json& m = tok.value("model", json());
  if (!m.is_object()) return invalid_argument("tokenizer.json: missing \"model\"", "model");
  const std::string type = json_string(m, "type");
  if (!type.empty() && type != "BPE") {
    return unimplemented("tokenizer.json: model type '" + type + "' is not supported (only BPE)",
                         "model.type");
  }
  const json& vocab = m.value("vocab", json());
  const json& merges = m.value("merges", json::array());
  if (!vocab.is_object())
    return invalid_argument("tokenizer.json: model.vocab: expected an object", "model.vocab");
  if (!merges.is_array())
    return invalid_argument("tokenizer.json: model.merges: expected a list", "model.merges");

  TURBINE_ASSIGN_OR_RETURN(t->normalizer_, HfNormalizer::parse(tok.value("normalizer", json())));
  TURBINE_ASSIGN_OR_RETURN(t->pre_tokenizer_,
                           HfPreTokenizer::parse(tok.value("pre_tokenizer", json())));
  TURBINE_ASSIGN_OR_RETURN(t->decoder_, HfDecoder::parse(tok.value("decoder", json())));

  BpeModel::Options options = bpe_options(m);

  // Vocabulary, then added tokens (which may extend it).
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) {
      return invalid_argument("tokenizer.json: model.vocab['" + it.key() + "']: expected an id",
                              "model.vocab");
    }
    const auto id = it.value().get<int64_t>();
    if (id < 0 || id >= (1 << 30))
      return invalid_argument("tokenizer.json: model.vocab: id out of range", "model.vocab");
    max_id = std::max(max_id, static_cast<int32_t>(id));
  }
  TURBINE_RETURN_IF_ERROR(t->parse_added_tokens(tok, max_id));
  const auto n = static_cast<size_t>(max_id + 1);
  t->size_tables(n);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const auto id = it.value().get<int32_t>();
    t->pieces_[id] = it.key();
  }
  t->mark_added_tokens();
  // Unknown token id (from the vocabulary or the added tokens).
  const std::string unk = json_string(m, "unk_token");
  if (!unk.empty()) {
    if (vocab.contains(unk)) {
      options.unk_id = vocab[unk].get<int32_t>();
    } else {
      for (const AddedToken& a : t->added_) {
        if (a.content == unk) options.unk_id = a.id;
      }
    }
  }
  auto model = std::make_unique<BpeModel>(options);
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    model->add_token(it.key(), it.value().get<int32_t>());
  for (const AddedToken& a : t->added_) {
    if (model->token_id(a.content) < 0) model->add_token(a.content, a.id);
  }
  TURBINE_RETURN_IF_ERROR(add_bpe_merges(merges, MergeSecond::kToSpace, *model));
  model->finish();
  t->model_ = std::move(model);

  std::function<std::string(const std::string&)> normalize;
  if (!t->normalizer_.empty()) {
    normalize = [&normalizer = t->normalizer_](const std::string& content) {
      std::string normalized = content;
      normalizer.normalize(normalized);
      return normalized;
    };
  }
  t->build_tries(normalize);
  t->apply_config(config);

  // Post-processor: which ids add_special puts around the text.
  const json post = tok.value("post_processor", json());
  std::vector<json> queue{post};
  for (size_t q = 0; q < queue.size(); ++q) {
    const json p = queue[q];
    if (!p.is_object()) continue;
    const std::string ptype = json_string(p, "type");
    if (ptype == "Sequence") {
      for (const json& sub : p.value("processors", json::array())) queue.push_back(sub);
    } else if (ptype == "TemplateProcessing") {
      const json& single = p.value("single", json::array());
      const json& specials = p.value("special_tokens", json::object());
      bool after = false;
      t->prefix_ids_.clear();
      t->suffix_ids_.clear();
      for (const json& item : single) {
        if (item.contains("Sequence")) {
          after = true;
          continue;
        }
        if (!item.contains("SpecialToken")) continue;
        TURBINE_ASSIGN_OR_RETURN(
            const std::vector<int32_t> ids,
            special_token_ids(specials, json_string(item["SpecialToken"], "id")));
        std::vector<int32_t>& side = after ? t->suffix_ids_ : t->prefix_ids_;
        side.insert(side.end(), ids.begin(), ids.end());
      }
    } else if (ptype == "RobertaProcessing" || ptype == "BertProcessing") {
      const json& cls = p.value("cls", json());
      const json& sep = p.value("sep", json());
      if (cls.is_array() && cls.size() == 2 && cls[1].is_number_integer())
        t->prefix_ids_ = {cls[1].get<int32_t>()};
      if (sep.is_array() && sep.size() == 2 && sep[1].is_number_integer())
        t->suffix_ids_ = {sep[1].get<int32_t>()};
    } else if (ptype == "ByteLevel" || ptype.empty()) {
      continue;
    } else {
      return unimplemented("post_processor type '" + ptype + "' is not supported",
                           "post_processor");
    }
  }
  TURBINE_RETURN_IF_ERROR(t->check_post_processor_ids(t->prefix_ids_));
  TURBINE_RETURN_IF_ERROR(t->check_post_processor_ids(t->suffix_ids_));

  // BOS / EOS: tokenizer_config.json names them (apply_config); else the post-processor's
  // first/last token.
  if (t->bos_id_ < 0 && !t->prefix_ids_.empty()) t->bos_id_ = t->prefix_ids_.front();
  if (t->eos_id_ < 0 && !t->suffix_ids_.empty()) t->eos_id_ = t->suffix_ids_.back();

  t->build_texts();
  return t;
}

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::from_json(
    std::string_view tokenizer_json, std::string_view tokenizer_config_json) {
  return build_from_json<HfTokenizer>(tokenizer_json, tokenizer_config_json, &HfTokenizer::build);
}

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::from_files(
    const std::filesystem::path& tokenizer_json, const std::filesystem::path& tokenizer_config) {
  return build_from_files<HfTokenizer>(tokenizer_json, tokenizer_config, &HfTokenizer::from_json);
}

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::from_gguf_vocab(const model::VocabSpec& vocab) {
  try {
    json tok = json::object();
    json v = json::object();
    json added = json::array();
    for (size_t i = 0; i < vocab.tokens.size(); ++i) {
      if (!is_valid_utf8(vocab.tokens[i])) {
        return invalid_argument(
            "tokenizer.ggml.tokens[" + std::to_string(i) + "]: ill-formed UTF-8",
            "tokenizer.ggml.tokens");
      }
      v[vocab.tokens[i]] = i;
      const int32_t type = i < vocab.token_types.size() ? vocab.token_types[i] : 1;
      if (type == 3 || type == 4) {  // control / user-defined: matched in text like added tokens
        added.push_back({{"id", i},
                         {"content", vocab.tokens[i]},
                         {"special", type == 3},
                         {"normalized", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"single_word", false}});
      }
    }
    tok["model"] = {{"type", "BPE"}, {"vocab", std::move(v)}, {"merges", vocab.merges}};
    tok["added_tokens"] = std::move(added);
    tok["normalizer"] = nullptr;
    // llama.cpp's names for the pre-tokenizer regexes.
    const std::string& pre = vocab.pre;
    json byte_level_no_regex = {
        {"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
    if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "smaug-bpe") {
      tok["pre_tokenizer"] = {{"type", "Sequence"},
                              {"pretokenizers",
                               {{{"type", "Split"},
                                 {"pattern", {{"Regex", kLlama3Pattern}}},
                                 {"behavior", "Isolated"},
                                 {"invert", false}},
                                byte_level_no_regex}}};
    } else if (pre == "qwen2" || pre == "deepseek-r1-qwen") {
      tok["pre_tokenizer"] = {{"type", "Sequence"},
                              {"pretokenizers",
                               {{{"type", "Split"},
                                 {"pattern", {{"Regex", kQwen2Pattern}}},
                                 {"behavior", "Isolated"},
                                 {"invert", false}},
                                byte_level_no_regex}}};
    } else if (pre.empty() || pre == "default" || pre == "gpt-2" || pre == "gpt2") {
      tok["pre_tokenizer"] = {
          {"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
    } else {
      return unimplemented("GGUF tokenizer.ggml.pre '" + pre + "' is not supported",
                           "tokenizer.ggml.pre");
    }
    tok["decoder"] = {{"type", "ByteLevel"}};
    json single = json::array();
    json specials = json::object();
    const auto add_special = [&](int32_t id) {
      const std::string name = vocab.tokens[static_cast<size_t>(id)];
      single.push_back({{"SpecialToken", {{"id", name}, {"type_id", 0}}}});
      specials[name] = {{"id", name}, {"ids", {id}}, {"tokens", {name}}};
    };
    const auto in_range = [&](int32_t id) {
      return id >= 0 && static_cast<size_t>(id) < vocab.tokens.size();
    };
    if (vocab.add_bos && in_range(vocab.bos_id)) add_special(vocab.bos_id);
    single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
    if (vocab.add_eos && in_range(vocab.eos_id)) add_special(vocab.eos_id);
    tok["post_processor"] = {
        {"type", "TemplateProcessing"}, {"single", single}, {"special_tokens", specials}};
    json config = json::object();
    if (in_range(vocab.bos_id))
      config["bos_token"] = vocab.tokens[static_cast<size_t>(vocab.bos_id)];
    if (in_range(vocab.eos_id))
      config["eos_token"] = vocab.tokens[static_cast<size_t>(vocab.eos_id)];
    return build(tok, config);
  } catch (const std::exception& e) {
    return invalid_argument(std::string("GGUF gpt2 vocabulary: ") + e.what(),
                            "tokenizer.ggml.tokens");
  }
}

int32_t HfTokenizer::model_token_id(std::string_view token) const {
  return model_ ? model_->token_id(token) : -1;
}

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> out;
  if (add_special) out = prefix_ids_;
  std::string sanitized;
  if (!is_valid_utf8(text)) {
    sanitized = sanitize_utf8(text);
    text = sanitized;
  }
  thread_local std::vector<Section> sections;
  thread_local std::vector<Section> subsections;
  sections.clear();
  split_added(text, raw_trie_, sections);
  PreTokens words;
  std::string normalized;
  for (size_t s = 0; s < sections.size(); ++s) {
    const Section section = sections[s];
    if (section.text.empty()) continue;
    if (section.added >= 0) {
      out.push_back(added_[section.added].id);
      continue;
    }
    std::string_view body = section.text;
    if (!normalizer_.empty()) {
      normalized.assign(section.text);
      normalizer_.normalize(normalized);
      body = normalized;
    }
    if (body.empty()) continue;
    subsections.clear();
    if (normalized_trie_.empty()) {
      subsections.push_back({body, -1});
    } else {
      split_added(body, normalized_trie_, subsections);
    }
    for (const Section& sub : subsections) {
      if (sub.text.empty()) continue;
      if (sub.added >= 0) {
        out.push_back(added_[sub.added].id);
        continue;
      }
      words.clear();
      pre_tokenizer_.pre_tokenize(sub.text, s, words);
      for (std::string_view word : words.pieces) model_->encode_word(word, words.byte_level, out);
    }
  }
  if (add_special) out.insert(out.end(), suffix_ids_.begin(), suffix_ids_.end());
  return out;
}

std::string HfTokenizer::token_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= texts_.size() || is_special(id)) return {};
  return texts_[id];
}

std::string HfTokenizer::token_text(int32_t prev_id, int32_t id, bool skip_special) const {
  if (id < 0 || static_cast<size_t>(id) >= texts_.size()) return {};
  if (is_special(id) && skip_special) return {};
  return decoded_text(prev_id, id);
}

}  // namespace turbine::tokenizer

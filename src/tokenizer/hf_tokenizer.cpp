#include "tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

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

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open " + path.string(), path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return data_loss("cannot read " + path.string(), path.string());
  return ss.str();
}

// tokenizer_config.json names tokens as strings or as {"content": ...} objects.
std::string token_name(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return {};
}

bool bool_field(const json& j, const char* key, bool fallback) {
  const auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

std::string string_field(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

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

void HfTokenizer::Trie::insert(std::string_view key, int32_t token) {
  if (key.empty()) return;
  first_bytes.set(static_cast<uint8_t>(key[0]));
  int32_t node = 0;
  for (char c : key) {
    const auto b = static_cast<uint8_t>(c);
    auto& children = nodes[node].children;
    auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(b, int32_t{-1}));
    if (it != children.end() && it->first == b) {
      node = it->second;
      continue;
    }
    const auto next = static_cast<int32_t>(nodes.size());
    children.insert(it, {b, next});
    nodes.emplace_back();
    node = next;
  }
  if (nodes[node].token < 0) nodes[node].token = token;
}

void HfTokenizer::split_added(std::string_view text, const Trie& trie,
                              std::vector<Section>& out) const {
  size_t start = 0;
  size_t i = 0;
  const size_t first_out = out.size();
  while (i < text.size()) {
    if (!trie.first_bytes.test(static_cast<uint8_t>(text[i]))) {
      ++i;
      continue;
    }
    int32_t node = 0;
    int32_t match = -1;
    size_t match_end = 0;
    for (size_t j = i; j < text.size(); ++j) {
      const auto b = static_cast<uint8_t>(text[j]);
      const auto& children = trie.nodes[node].children;
      auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(b, int32_t{-1}));
      if (it == children.end() || it->first != b) break;
      node = it->second;
      if (trie.nodes[node].token >= 0) {
        match = trie.nodes[node].token;
        match_end = j + 1;
      }
    }
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
  const std::string type = string_field(m, "type");
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

  BpeModel::Options options;
  options.byte_fallback = bool_field(m, "byte_fallback", false);
  options.fuse_unk = bool_field(m, "fuse_unk", false);
  options.ignore_merges = bool_field(m, "ignore_merges", false);
  options.continuing_subword_prefix = string_field(m, "continuing_subword_prefix");
  options.end_of_word_suffix = string_field(m, "end_of_word_suffix");

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
  const json& added = tok.value("added_tokens", json::array());
  if (!added.is_array())
    return invalid_argument("tokenizer.json: added_tokens: expected a list", "added_tokens");
  for (const json& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
        !a.contains("content") || !a["content"].is_string()) {
      return invalid_argument("tokenizer.json: added_tokens: expected {id, content, ...}",
                              "added_tokens");
    }
    AddedToken token;
    const auto id = a["id"].get<int64_t>();
    if (id < 0 || id >= (1 << 30))
      return invalid_argument("tokenizer.json: added_tokens: id out of range", "added_tokens");
    token.id = static_cast<int32_t>(id);
    token.content = a["content"].get<std::string>();
    if (token.content.empty() || !is_valid_utf8(token.content)) {
      return invalid_argument("tokenizer.json: added_tokens: empty or ill-formed content",
                              "added_tokens");
    }
    token.special = bool_field(a, "special", false);
    token.lstrip = bool_field(a, "lstrip", false);
    token.rstrip = bool_field(a, "rstrip", false);
    token.normalized = bool_field(a, "normalized", !token.special);
    token.single_word = bool_field(a, "single_word", false);
    max_id = std::max(max_id, token.id);
    t->added_.push_back(std::move(token));
  }
  const auto n = static_cast<size_t>(max_id + 1);
  t->pieces_.assign(n, std::string());
  t->special_.assign(n, 0);
  std::vector<uint8_t> is_added(n, 0);

  const std::string unk = string_field(m, "unk_token");
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const auto id = it.value().get<int32_t>();
    t->pieces_[id] = it.key();
  }
  for (const AddedToken& a : t->added_) {
    t->pieces_[a.id] = a.content;
    is_added[a.id] = 1;
    if (a.special) t->special_[a.id] = 1;
  }
  // Unknown token id (from the vocabulary or the added tokens).
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
  for (const json& merge : merges) {
    if (merge.is_string()) {
      const std::string& s = merge.get_ref<const std::string&>();
      const size_t space = s.find(' ', 1);
      if (space == std::string::npos)
        return invalid_argument("tokenizer.json: model.merges: '" + s + "' is not \"a b\"",
                                "model.merges");
      const size_t end = s.find(' ', space + 1);
      (void)model->add_merge(
          std::string_view(s).substr(0, space),
          std::string_view(s).substr(
              space + 1, end == std::string::npos ? std::string::npos : end - space - 1));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      (void)model->add_merge(merge[0].get_ref<const std::string&>(),
                             merge[1].get_ref<const std::string&>());
    } else {
      return invalid_argument("tokenizer.json: model.merges: expected \"a b\" or [a, b]",
                              "model.merges");
    }
  }
  model->finish();
  t->model_ = std::move(model);

  for (size_t i = 0; i < t->added_.size(); ++i) {
    const AddedToken& a = t->added_[i];
    if (a.normalized && !t->normalizer_.empty()) {
      std::string normalized = a.content;
      t->normalizer_.normalize(normalized);
      t->normalized_trie_.insert(normalized, static_cast<int32_t>(i));
    } else {
      t->raw_trie_.insert(a.content, static_cast<int32_t>(i));
    }
  }

  // Special tokens the config adds (transformers' additional_special_tokens).
  if (config.is_object()) {
    const json& extra = config.value("additional_special_tokens", json::array());
    if (extra.is_array()) {
      for (const json& e : extra) {
        std::string name = e.is_string()   ? e.get<std::string>()
                           : e.is_object() ? string_field(e, "content")
                                           : std::string();
        const int32_t id = t->token_to_id(name);
        if (id >= 0) t->special_[id] = 1;
      }
    }
  }

  // Post-processor: which ids add_special puts around the text.
  const json post = tok.value("post_processor", json());
  std::vector<json> queue{post};
  for (size_t q = 0; q < queue.size(); ++q) {
    const json p = queue[q];
    if (!p.is_object()) continue;
    const std::string ptype = string_field(p, "type");
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
        const std::string name = string_field(item["SpecialToken"], "id");
        const auto sp = specials.find(name);
        if (sp == specials.end() || !sp->contains("ids") || !(*sp)["ids"].is_array()) {
          return invalid_argument(
              "tokenizer.json: post_processor: unknown special token '" + name + "'",
              "post_processor");
        }
        for (const json& id : (*sp)["ids"]) {
          if (!id.is_number_integer())
            return invalid_argument("tokenizer.json: post_processor: bad id", "post_processor");
          (after ? t->suffix_ids_ : t->prefix_ids_).push_back(id.get<int32_t>());
        }
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
  for (int32_t id : t->prefix_ids_) {
    if (id < 0 || static_cast<size_t>(id) >= n)
      return invalid_argument("tokenizer.json: post_processor: id out of range", "post_processor");
  }
  for (int32_t id : t->suffix_ids_) {
    if (id < 0 || static_cast<size_t>(id) >= n)
      return invalid_argument("tokenizer.json: post_processor: id out of range", "post_processor");
  }

  // BOS / EOS: tokenizer_config.json names them; else the post-processor's first/last token.
  if (config.is_object()) {
    t->bos_id_ = t->token_to_id(token_name(config, "bos_token"));
    t->eos_id_ = t->token_to_id(token_name(config, "eos_token"));
  }
  if (t->bos_id_ < 0 && !t->prefix_ids_.empty()) t->bos_id_ = t->prefix_ids_.front();
  if (t->eos_id_ < 0 && !t->suffix_ids_.empty()) t->eos_id_ = t->suffix_ids_.back();

  t->texts_.resize(n);
  for (size_t id = 0; id < n; ++id)
    t->texts_[id] = t->decoder_.token_text(t->pieces_[id], is_added[id] != 0);
  return t;
}

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::from_json(
    std::string_view tokenizer_json, std::string_view tokenizer_config_json) {
  // nlohmann::json throws on type mismatches deep inside; this is the module edge for it.
  try {
    json tok = json::parse(tokenizer_json, nullptr, /*allow_exceptions=*/false);
    if (tok.is_discarded()) return invalid_argument("tokenizer.json: not valid JSON");
    json config = json::object();
    if (!tokenizer_config_json.empty()) {
      config = json::parse(tokenizer_config_json, nullptr, false);
      if (config.is_discarded()) return invalid_argument("tokenizer_config.json: not valid JSON");
    }
    return build(tok, config);
  } catch (const std::exception& e) {
    return invalid_argument(std::string("tokenizer.json: ") + e.what());
  }
}

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::from_files(
    const std::filesystem::path& tokenizer_json, const std::filesystem::path& tokenizer_config) {
  TURBINE_ASSIGN_OR_RETURN(std::string tok, read_file(tokenizer_json));
  std::string config;
  if (!tokenizer_config.empty()) {
    TURBINE_ASSIGN_OR_RETURN(config, read_file(tokenizer_config));
  }
  auto result = from_json(tok, config);
  if (!result.has_value()) {
    const Status s = result.status();
    return Status(s.code(), tokenizer_json.string() + ": " + s.message(), s.field());
  }
  return result;
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

int32_t HfTokenizer::token_to_id(std::string_view token) const {
  if (token.empty()) return -1;
  for (const AddedToken& a : added_) {
    if (a.content == token) return a.id;
  }
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

bool HfTokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[id] != 0;
}

std::string HfTokenizer::piece(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < pieces_.size() ? pieces_[id] : std::string();
}

std::string HfTokenizer::token_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= texts_.size() || is_special(id)) return {};
  return texts_[id];
}

std::string HfTokenizer::token_text(int32_t prev_id, int32_t id, bool skip_special) const {
  if (id < 0 || static_cast<size_t>(id) >= texts_.size()) return {};
  if (is_special(id) && skip_special) return {};
  const std::string& text = texts_[id];
  const size_t strip = decoder_.strip_at_start();
  if (strip > 0 && prev_id < 0) {
    size_t k = 0;
    while (k < strip && k < text.size() && text[k] == decoder_.strip_char()) ++k;
    return text.substr(k);
  }
  return text;
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  int32_t prev = -1;
  for (int32_t id : ids) {
    out += token_text(prev, id, skip_special);
    if (!(skip_special && is_special(id))) prev = id;
  }
  return out;
}

}  // namespace turbine::tokenizer

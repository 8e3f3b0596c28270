#include "tokenizer/hf_tokenizer_base.h"

#include <algorithm>

#include "tokenizer/tokenizer_json.h"
#include "tokenizer/utf8.h"

namespace turbine::tokenizer {

using nlohmann::json;

void AddedTokenTrie::insert(std::string_view key, int32_t token) {
  if (key.empty()) return;
  first_bytes_.set(static_cast<uint8_t>(key[0]));
  size_t node = 0;
  for (char c : key) {
    const auto b = static_cast<uint8_t>(c);
    auto& children = nodes_[node].children;
    auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(b, int32_t{-1}));
    if (it != children.end() && it->first == b) {
      node = static_cast<size_t>(it->second);
      continue;
    }
    const auto next = static_cast<int32_t>(nodes_.size());
    children.insert(it, {b, next});
    nodes_.emplace_back();
    node = static_cast<size_t>(next);
  }
  if (nodes_[node].token < 0) nodes_[node].token = token;
}

int32_t AddedTokenTrie::match(std::string_view text, size_t i, size_t& end) const {
  size_t node = 0;
  int32_t found = -1;
  for (size_t j = i; j < text.size(); ++j) {
    const auto b = static_cast<uint8_t>(text[j]);
    const auto& children = nodes_[node].children;
    auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(b, int32_t{-1}));
    if (it == children.end() || it->first != b) break;
    node = static_cast<size_t>(it->second);
    if (nodes_[node].token >= 0) {
      found = nodes_[node].token;
      end = j + 1;
    }
  }
  return found;
}

HfTokenizerBase::HfTokenizerBase() = default;
HfTokenizerBase::~HfTokenizerBase() = default;

Status HfTokenizerBase::parse_added_tokens(const json& tokenizer, int32_t& max_id) {
  const json& added = tokenizer.value("added_tokens", json::array());
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
    token.special = json_bool(a, "special", false);
    token.lstrip = json_bool(a, "lstrip", false);
    token.rstrip = json_bool(a, "rstrip", false);
    token.normalized = json_bool(a, "normalized", !token.special);
    token.single_word = json_bool(a, "single_word", false);
    max_id = std::max(max_id, token.id);
    added_.push_back(std::move(token));
  }
  return Status::ok();
}

void HfTokenizerBase::size_tables(size_t n) {
  pieces_.assign(n, std::string());
  texts_.assign(n, std::string());
  special_.assign(n, 0);
  is_added_.assign(n, 0);
}

void HfTokenizerBase::mark_added_tokens() {
  for (const AddedToken& a : added_) {
    const auto id = static_cast<size_t>(a.id);
    pieces_[id] = a.content;
    is_added_[id] = 1;
    if (a.special) special_[id] = 1;
  }
}

void HfTokenizerBase::build_tries(const std::function<std::string(const std::string&)>& normalize) {
  for (size_t i = 0; i < added_.size(); ++i) {
    const AddedToken& a = added_[i];
    if (a.normalized && normalize) {
      normalized_trie_.insert(normalize(a.content), static_cast<int32_t>(i));
    } else {
      raw_trie_.insert(a.content, static_cast<int32_t>(i));
    }
  }
}

void HfTokenizerBase::apply_config(const json& config) {
  if (!config.is_object()) return;
  // transformers' additional_special_tokens.
  const json& extra = config.value("additional_special_tokens", json::array());
  if (extra.is_array()) {
    for (const json& e : extra) {
      const std::string name = e.is_string()   ? e.get<std::string>()
                               : e.is_object() ? json_string(e, "content")
                                               : std::string();
      const int32_t id = token_to_id(name);
      if (id >= 0) special_[static_cast<size_t>(id)] = 1;
    }
  }
  bos_id_ = token_to_id(config_token_name(config, "bos_token"));
  eos_id_ = token_to_id(config_token_name(config, "eos_token"));
}

Status HfTokenizerBase::check_post_processor_ids(const std::vector<int32_t>& ids) const {
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= pieces_.size())
      return invalid_argument("tokenizer.json: post_processor: id out of range", "post_processor");
  }
  return Status::ok();
}

void HfTokenizerBase::build_texts() {
  for (size_t id = 0; id < pieces_.size(); ++id)
    texts_[id] = decoder_.token_text(pieces_[id], is_added_[id] != 0);
}

std::string HfTokenizerBase::decoded_text(int32_t prev_id, int32_t id) const {
  const std::string& text = texts_[static_cast<size_t>(id)];
  const size_t strip = decoder_.strip_at_start();
  if (strip > 0 && prev_id < 0) {
    size_t k = 0;
    while (k < strip && k < text.size() && text[k] == decoder_.strip_char()) ++k;
    return text.substr(k);
  }
  return text;
}

int32_t HfTokenizerBase::token_to_id(std::string_view token) const {
  if (token.empty()) return -1;
  for (const AddedToken& a : added_) {
    if (a.content == token) return a.id;
  }
  return model_token_id(token);
}

bool HfTokenizerBase::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < special_.size() &&
         special_[static_cast<size_t>(id)] != 0;
}

std::string HfTokenizerBase::piece(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < pieces_.size() ? pieces_[static_cast<size_t>(id)]
                                                             : std::string();
}

std::string HfTokenizerBase::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  int32_t prev = -1;
  for (int32_t id : ids) {
    out += token_text(prev, id, skip_special);
    if (!(skip_special && is_special(id))) prev = id;
  }
  return out;
}

}  // namespace turbine::tokenizer

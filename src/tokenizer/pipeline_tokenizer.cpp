#include "tokenizer/pipeline_tokenizer.h"

#include <algorithm>

#include "tokenizer/tokenizer_json.h"
#include "tokenizer/utf8.h"

namespace turbine::tokenizer {
namespace {

using nlohmann::json;

// WordPiece decoder's cleanup (transformers' clean_up_tokenization), per token.
std::string cleanup(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
      {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
      {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    const std::string_view f(from);
    std::string out;
    size_t at = 0, pos;
    while ((pos = s.find(f, at)) != std::string::npos) {
      out.append(s, at, pos - at);
      out += to;
      at = pos + f.size();
    }
    out.append(s, at, std::string::npos);
    s = std::move(out);
  }
  return s;
}

}  // namespace

PipelineTokenizer::PipelineTokenizer() = default;
PipelineTokenizer::~PipelineTokenizer() = default;

Result<std::unique_ptr<PipelineTokenizer>> PipelineTokenizer::build(const json& tok,
                                                                    const json& config) {
  std::unique_ptr<PipelineTokenizer> t(new PipelineTokenizer());
  if (!tok.is_object()) return invalid_argument("tokenizer.json: expected an object");
  const json& m = tok.value("model", json());
  if (!m.is_object()) return invalid_argument("tokenizer.json: missing \"model\"", "model");
  t->model_type_ = json_string(m, "type");
  if (t->model_type_.empty()) t->model_type_ = "BPE";

  TURBINE_ASSIGN_OR_RETURN(t->normalizer_,
                           AlignedNormalizer::parse(tok.value("normalizer", json())));
  TURBINE_ASSIGN_OR_RETURN(t->pre_tokenizer_,
                           AlignedPreTokenizer::parse(tok.value("pre_tokenizer", json())));
  const json& dec = tok.value("decoder", json());
  if (dec.is_object() && json_string(dec, "type") == "WordPiece") {
    t->wordpiece_decoder_ = true;
    t->wordpiece_prefix_ = dec.value("prefix", std::string("##"));
    t->wordpiece_cleanup_ = json_bool(dec, "cleanup", true);
  } else {
    TURBINE_ASSIGN_OR_RETURN(t->decoder_, HfDecoder::parse(dec));
  }

  // The model's pieces.
  PieceMap vocab;
  if (t->model_type_ == "WordPiece") {
    TURBINE_ASSIGN_OR_RETURN(t->subword_, make_wordpiece_model(m));
    vocab = t->subword_->pieces();
  } else if (t->model_type_ == "Unigram") {
    TURBINE_ASSIGN_OR_RETURN(t->subword_, make_unigram_model(m));
    vocab = t->subword_->pieces();
  } else if (t->model_type_ == "BPE") {
    const json& v = m.value("vocab", json());
    if (!v.is_object())
      return invalid_argument("tokenizer.json: model.vocab: expected an object", "model.vocab");
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
          it.value().get<int64_t>() >= (int64_t{1} << 30))
        return invalid_argument("tokenizer.json: model.vocab['" + it.key() + "']: expected an id",
                                "model.vocab");
      vocab.emplace(it.key(), it.value().get<int32_t>());
    }
  } else {
    return unimplemented("tokenizer.json: model type '" + t->model_type_ + "' is not supported",
                         "model.type");
  }

  int32_t max_id = -1;
  for (const auto& [piece, id] : vocab) max_id = std::max(max_id, id);
  TURBINE_RETURN_IF_ERROR(t->parse_added_tokens(tok, max_id));
  const auto n = static_cast<size_t>(max_id + 1);
  t->size_tables(n);
  for (const auto& [piece, id] : vocab) t->pieces_[static_cast<size_t>(id)] = piece;
  t->mark_added_tokens();

  if (t->model_type_ == "BPE") {
    BpeModel::Options options = bpe_options(m);
    t->bpe_prefix_ = options.continuing_subword_prefix;
    t->bpe_suffix_ = options.end_of_word_suffix;
    const std::string unk = json_string(m, "unk_token");
    if (!unk.empty()) {
      if (auto it = vocab.find(unk); it != vocab.end()) options.unk_id = it->second;
    }
    auto bpe = std::make_unique<BpeModel>(options);
    for (const auto& [piece, id] : vocab) bpe->add_token(piece, id);
    TURBINE_RETURN_IF_ERROR(
        add_bpe_merges(m.value("merges", json::array()), MergeSecond::kToEnd, *bpe));
    bpe->finish();
    t->bpe_ = std::move(bpe);
  }

  std::function<std::string(const std::string&)> normalize;
  if (!t->normalizer_.empty()) {
    normalize = [&normalizer = t->normalizer_](const std::string& content) {
      return normalizer.normalize(content);
    };
  }
  t->build_tries(normalize);
  t->apply_config(config);
  TURBINE_RETURN_IF_ERROR(t->parse_post_processor(tok.value("post_processor", json())));
  for (const auto* items : {&t->single_, &t->pair_}) {
    for (const TemplateItem& item : *items)
      TURBINE_RETURN_IF_ERROR(t->check_post_processor_ids(item.ids));
  }
  // BOS / EOS: tokenizer_config.json names them (apply_config); else the template's first/last
  // special token.
  if (t->bos_id_ < 0 && !t->single_.empty() && t->single_.front().seq < 0 &&
      !t->single_.front().ids.empty())
    t->bos_id_ = t->single_.front().ids.front();
  if (t->eos_id_ < 0 && !t->single_.empty() && t->single_.back().seq < 0 &&
      !t->single_.back().ids.empty())
    t->eos_id_ = t->single_.back().ids.back();

  if (!t->wordpiece_decoder_) t->build_texts();
  return t;
}

Status PipelineTokenizer::parse_post_processor(const json& post) {
  // Default (no post-processor): the texts alone.
  single_ = {TemplateItem{0, {}, 0}};
  pair_ = {TemplateItem{0, {}, 0}, TemplateItem{1, {}, 1}};
  std::vector<json> queue{post};
  for (size_t q = 0; q < queue.size(); ++q) {
    const json p = queue[q];
    if (!p.is_object()) continue;
    const std::string type = json_string(p, "type");
    if (type == "Sequence") {
      for (const json& sub : p.value("processors", json::array())) queue.push_back(sub);
    } else if (type == "TemplateProcessing") {
      const json& specials = p.value("special_tokens", json::object());
      const auto parse_items = [&](const json& list, std::vector<TemplateItem>& items) -> Status {
        items.clear();
        if (!list.is_array())
          return invalid_argument("post_processor: template: expected a list", "post_processor");
        for (const json& item : list) {
          TemplateItem ti;
          if (item.contains("Sequence")) {
            const json& s = item["Sequence"];
            ti.seq = json_string(s, "id") == "B" ? 1 : 0;
            ti.type_id = s.value("type_id", 0);
          } else if (item.contains("SpecialToken")) {
            const json& s = item["SpecialToken"];
            TURBINE_ASSIGN_OR_RETURN(ti.ids, special_token_ids(specials, json_string(s, "id")));
            ti.type_id = s.value("type_id", 0);
          } else {
            return invalid_argument("tokenizer.json: post_processor: unknown template item",
                                    "post_processor");
          }
          items.push_back(std::move(ti));
        }
        return Status::ok();
      };
      TURBINE_RETURN_IF_ERROR(parse_items(p.value("single", json::array()), single_));
      if (p.contains("pair")) TURBINE_RETURN_IF_ERROR(parse_items(p["pair"], pair_));
    } else if (type == "BertProcessing" || type == "RobertaProcessing") {
      const json& cls = p.value("cls", json());
      const json& sep = p.value("sep", json());
      if (!cls.is_array() || cls.size() != 2 || !cls[1].is_number_integer() || !sep.is_array() ||
          sep.size() != 2 || !sep[1].is_number_integer())
        return invalid_argument("tokenizer.json: post_processor: cls/sep: expected [token, id]",
                                "post_processor");
      const int32_t c = cls[1].get<int32_t>(), s = sep[1].get<int32_t>();
      single_ = {{-1, {c}, 0}, {0, {}, 0}, {-1, {s}, 0}};
      if (type == "BertProcessing") {
        pair_ = {{-1, {c}, 0}, {0, {}, 0}, {-1, {s}, 0}, {1, {}, 1}, {-1, {s}, 1}};
      } else {
        pair_ = {{-1, {c}, 0}, {0, {}, 0}, {-1, {s}, 0}, {-1, {s}, 1}, {1, {}, 1}, {-1, {s}, 1}};
        trim_offsets_ = json_bool(p, "trim_offsets", true);
        trim_add_prefix_space_ = json_bool(p, "add_prefix_space", true);
      }
    } else if (type == "ByteLevel") {
      trim_offsets_ = json_bool(p, "trim_offsets", true);
      trim_add_prefix_space_ = json_bool(p, "add_prefix_space", true);
    } else if (!type.empty()) {
      return unimplemented("post_processor type '" + type + "' is not supported", "post_processor");
    }
  }
  return Status::ok();
}

Result<std::unique_ptr<PipelineTokenizer>> PipelineTokenizer::from_json(
    std::string_view tokenizer_json, std::string_view tokenizer_config_json) {
  return build_from_json<PipelineTokenizer>(tokenizer_json, tokenizer_config_json,
                                            &PipelineTokenizer::build);
}

Result<std::unique_ptr<PipelineTokenizer>> PipelineTokenizer::from_files(
    const std::filesystem::path& tokenizer_json, const std::filesystem::path& tokenizer_config) {
  return build_from_files<PipelineTokenizer>(tokenizer_json, tokenizer_config,
                                             &PipelineTokenizer::from_json);
}

int32_t PipelineTokenizer::model_token_id(std::string_view token) const {
  if (subword_) {
    auto it = subword_->pieces().find(token);
    return it == subword_->pieces().end() ? -1 : it->second;
  }
  return bpe_ ? bpe_->token_id(token) : -1;
}

void PipelineTokenizer::encode_words(AlignedText section, std::vector<Token>& out) const {
  std::vector<AlignedText> words;
  const bool byte_level = pre_tokenizer_.split(std::move(section), words);
  std::vector<SubToken> subs;
  std::vector<int32_t> ids;
  for (const AlignedText& w : words) {
    if (subword_) {
      subs.clear();
      subword_->encode_word(w.text, subs);
      for (const SubToken& s : subs) out.push_back({s.id, w.original(s.begin, s.end)});
      continue;
    }
    ids.clear();
    bpe_->encode_word(w.text, byte_level, ids);
    // Each BPE token's bytes in the word: byte-level pieces have one character per byte; other
    // pieces are their text without the continuation prefix / end-of-word suffix, byte-fallback
    // pieces one byte. When that does not add up (unknown tokens), every token gets the word.
    std::vector<size_t> lengths(ids.size());
    size_t total = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
      const std::string& p = pieces_[static_cast<size_t>(ids[k])];
      size_t len;
      if (byte_level) {
        len = count_chars(p);
      } else if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>') {
        len = 1;
      } else {
        len = p.size();
        if (k > 0 && !bpe_prefix_.empty() && p.compare(0, bpe_prefix_.size(), bpe_prefix_) == 0)
          len -= bpe_prefix_.size();
        if (k + 1 == ids.size() && !bpe_suffix_.empty() && len >= bpe_suffix_.size() &&
            p.compare(p.size() - bpe_suffix_.size(), bpe_suffix_.size(), bpe_suffix_) == 0)
          len -= bpe_suffix_.size();
      }
      lengths[k] = len;
      total += len;
    }
    size_t at = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
      if (total != w.text.size()) {
        out.push_back({ids[k], w.original(0, w.text.size())});
      } else {
        out.push_back({ids[k], w.original(at, at + lengths[k])});
        at += lengths[k];
      }
    }
  }
}

void PipelineTokenizer::encode_sequence(std::string_view text, std::vector<Token>& out) const {
  // Added tokens matched in the original text; lstrip/rstrip swallow neighbouring whitespace.
  struct Section {
    size_t begin, end;
    int32_t added;
  };
  std::vector<Section> sections;
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    size_t end = 0;
    const int32_t a = raw_trie_.empty() ? -1 : raw_trie_.match(text, i, end);
    if (a < 0) {
      ++i;
      continue;
    }
    size_t b = i, e = end;
    const AddedToken& tok = added_[static_cast<size_t>(a)];
    if (tok.lstrip) {
      while (b > start) {
        size_t c = b - 1;
        while (c > start && (static_cast<uint8_t>(text[c]) & 0xC0) == 0x80) --c;
        size_t k = c;
        if (!is_unicode_whitespace(next_code_point(text, k))) break;
        b = c;
      }
    }
    if (tok.rstrip) {
      while (e < text.size()) {
        size_t k = e;
        if (!is_unicode_whitespace(next_code_point(text, k))) break;
        e = k;
      }
    }
    if (b > start) sections.push_back({start, b, -1});
    sections.push_back({b, e, a});
    i = e;
    start = e;
  }
  if (start < text.size()) sections.push_back({start, text.size(), -1});

  for (const Section& s : sections) {
    if (s.added >= 0) {
      out.push_back({added_[static_cast<size_t>(s.added)].id,
                     {static_cast<uint32_t>(s.begin), static_cast<uint32_t>(s.end)}});
      continue;
    }
    AlignedText t = AlignedText::from_original(text.substr(s.begin, s.end - s.begin),
                                               static_cast<uint32_t>(s.begin));
    normalizer_.normalize(t);
    if (t.empty()) continue;
    if (normalized_trie_.empty()) {
      encode_words(std::move(t), out);
      continue;
    }
    size_t from = 0;
    for (size_t i = 0; i < t.text.size();) {
      size_t end = 0;
      const int32_t a = normalized_trie_.match(t.text, i, end);
      if (a < 0) {
        ++i;
        continue;
      }
      if (i > from) encode_words(t.slice(from, i), out);
      out.push_back({added_[static_cast<size_t>(a)].id, t.original(i, end)});
      i = end;
      from = end;
    }
    if (from < t.text.size()) encode_words(t.slice(from, t.text.size()), out);
  }
}

void PipelineTokenizer::trim_offsets(std::vector<Token>& tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    Token& t = tokens[i];
    const std::string& p = pieces_[static_cast<size_t>(t.id)];
    // Leading / trailing spaces of the piece ("Ġ" is the byte-level space).
    size_t lead = 0, trail = 0;
    std::vector<uint32_t> cps;
    for (size_t k = 0; k < p.size();) cps.push_back(next_code_point(p, k));
    const auto space = [](uint32_t cp) { return cp == 0x120 || is_unicode_whitespace(cp); };
    while (lead < cps.size() && space(cps[lead])) ++lead;
    while (trail < cps.size() && space(cps[cps.size() - 1 - trail])) ++trail;
    if (lead > 0) {
      const bool first = i == 0 || t.span.begin == 0;
      if (first && trim_add_prefix_space_ && lead == 1) lead = 0;
      t.span.begin = std::min(t.span.begin + static_cast<uint32_t>(lead), t.span.end);
    }
    if (trail > 0 && t.span.end >= trail)
      t.span.end = std::max(t.span.end - static_cast<uint32_t>(trail), t.span.begin);
  }
}

size_t PipelineTokenizer::num_special_tokens(bool pair) const {
  size_t n = 0;
  for (const TemplateItem& item : pair ? pair_ : single_) n += item.ids.size();
  return n;
}

Encoding PipelineTokenizer::encode(std::string_view text, std::optional<std::string_view> pair,
                                   const EncodeOptions& options) const {
  std::string sanitized_a, sanitized_b;
  if (!is_valid_utf8(text)) {
    sanitized_a = sanitize_utf8(text);
    text = sanitized_a;
  }
  if (pair && !is_valid_utf8(*pair)) {
    sanitized_b = sanitize_utf8(*pair);
    pair = sanitized_b;
  }
  std::vector<Token> seqs[2];
  encode_sequence(text, seqs[0]);
  if (pair) encode_sequence(*pair, seqs[1]);
  if (trim_offsets_) {
    trim_offsets(seqs[0]);
    trim_offsets(seqs[1]);
  }
  if (options.max_length > 0) {
    const size_t specials = options.add_special ? num_special_tokens(pair.has_value()) : 0;
    const size_t budget = options.max_length > specials ? options.max_length - specials : 0;
    // Longest first; on a tie the first text gives up its token.
    while (seqs[0].size() + seqs[1].size() > budget) {
      if (seqs[1].size() > seqs[0].size()) {
        seqs[1].pop_back();
      } else {
        seqs[0].pop_back();
      }
    }
  }
  Encoding e;
  const auto& items = pair ? pair_ : single_;
  for (const TemplateItem& item : items) {
    if (item.seq < 0) {
      if (!options.add_special) continue;
      for (int32_t id : item.ids) {
        e.ids.push_back(id);
        e.type_ids.push_back(item.type_id);
        e.offsets.push_back({0, 0});
        e.sequence_ids.push_back(-1);
      }
      continue;
    }
    if (item.seq == 1 && !pair) continue;
    for (const Token& t : seqs[item.seq]) {
      e.ids.push_back(t.id);
      e.type_ids.push_back(item.type_id);
      e.offsets.push_back(t.span);
      e.sequence_ids.push_back(static_cast<int8_t>(item.seq));
    }
  }
  return e;
}

std::vector<int32_t> PipelineTokenizer::encode(std::string_view text, bool add_special) const {
  EncodeOptions options;
  options.add_special = add_special;
  return encode(text, std::nullopt, options).ids;
}

std::string PipelineTokenizer::token_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= pieces_.size() || is_special(id)) return {};
  return token_text(0, id, true);
}

std::string PipelineTokenizer::token_text(int32_t prev_id, int32_t id, bool skip_special) const {
  if (id < 0 || static_cast<size_t>(id) >= pieces_.size()) return {};
  if (is_special(id) && skip_special) return {};
  if (wordpiece_decoder_) {
    std::string s = pieces_[static_cast<size_t>(id)];
    if (prev_id >= 0) {
      if (s.compare(0, wordpiece_prefix_.size(), wordpiece_prefix_) == 0) {
        s.erase(0, wordpiece_prefix_.size());
      } else {
        s.insert(0, " ");
      }
    }
    return wordpiece_cleanup_ ? cleanup(std::move(s)) : s;
  }
  return decoded_text(prev_id, id);
}

std::vector<ByteSpan> to_char_offsets(std::string_view text, const std::vector<ByteSpan>& offsets) {
  // Code points before each byte position.
  std::vector<uint32_t> chars(text.size() + 1, 0);
  uint32_t n = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    chars[i] = n;
    n += (static_cast<uint8_t>(text[i]) & 0xC0) != 0x80;
  }
  chars[text.size()] = n;
  std::vector<ByteSpan> out;
  out.reserve(offsets.size());
  for (const ByteSpan& s : offsets) {
    const uint32_t b = std::min<uint32_t>(s.begin, static_cast<uint32_t>(text.size()));
    const uint32_t e = std::min<uint32_t>(s.end, static_cast<uint32_t>(text.size()));
    out.push_back({chars[b], chars[e]});
  }
  return out;
}

}  // namespace turbine::tokenizer

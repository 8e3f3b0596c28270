#include "tokenizer/spm_tokenizer.h"

#include <cstdio>
#include <queue>
#include <string>
#include <utility>

namespace turbine::tokenizer {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 "▁"

// Parses "<0xXX>" (upper- or lower-case hex); -1 when `piece` is not a byte piece.
int parse_byte_piece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int value = 0;
  for (char c : piece.substr(3, 2)) {
    int digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else
      return -1;
    value = value * 16 + digit;
  }
  return value;
}

std::string replace_space_marker(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.substr(i, kSpaceMarker.size()) == kSpaceMarker) {
      out.push_back(' ');
      i += kSpaceMarker.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

// One symbol of the merge list: a run of the normalised text. Merging folds the right symbol into
// the left one, so symbol 0 is always the head and `len == 0` marks a symbol that was absorbed.
struct Symbol {
  int32_t prev;
  int32_t next;
  uint32_t start;
  uint32_t len;
  int32_t id;  // vocabulary id, or -1 for a character with no piece (byte fallback, never merged)
};

struct Bigram {
  float score;
  int32_t left;  // symbol index; indices grow with text position, so smaller means leftmost
  int32_t right;
  uint32_t len;  // left.len + right.len when queued; a mismatch later means the entry is stale
  int32_t id;
};

// Highest score first, then leftmost: the same choice llama2.c's rescanning loop makes.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    if (a.score != b.score) return a.score < b.score;
    return a.left > b.left;
  }
};

}  // namespace

Result<std::unique_ptr<SpmTokenizer>> SpmTokenizer::create(const model::VocabSpec& vocab) {
  const size_t n = vocab.tokens.size();
  if (n == 0) return invalid_argument("vocabulary has no tokens", "tokenizer.ggml.tokens");
  if (n > static_cast<size_t>(INT32_MAX)) {
    return invalid_argument("vocabulary is too large", "tokenizer.ggml.tokens");
  }
  if (!vocab.scores.empty() && vocab.scores.size() != n) {
    return invalid_argument("vocabulary has " + std::to_string(n) + " tokens but " +
                                std::to_string(vocab.scores.size()) + " scores",
                            "tokenizer.ggml.scores");
  }
  if (!vocab.token_types.empty() && vocab.token_types.size() != n) {
    return invalid_argument("vocabulary has " + std::to_string(n) + " tokens but " +
                                std::to_string(vocab.token_types.size()) + " token types",
                            "tokenizer.ggml.token_type");
  }
  const auto check_id = [n](int32_t id, const char* field) -> Status {
    if (id < -1 || id >= static_cast<int64_t>(n)) {
      return invalid_argument("special token id " + std::to_string(id) +
                                  " is outside the vocabulary of " + std::to_string(n),
                              field);
    }
    return Status::ok();
  };
  TURBINE_RETURN_IF_ERROR(check_id(vocab.bos_id, "tokenizer.ggml.bos_token_id"));
  TURBINE_RETURN_IF_ERROR(check_id(vocab.eos_id, "tokenizer.ggml.eos_token_id"));
  TURBINE_RETURN_IF_ERROR(check_id(vocab.unk_id, "tokenizer.ggml.unknown_token_id"));

  std::unique_ptr<SpmTokenizer> t(new SpmTokenizer());
  t->pieces_ = vocab.tokens;
  t->scores_ = vocab.scores.empty() ? std::vector<float>(n, 0.0f) : vocab.scores;
  t->bos_id_ = vocab.bos_id;
  t->eos_id_ = vocab.eos_id;
  t->unk_id_ = vocab.unk_id;
  t->add_bos_ = vocab.add_bos;
  t->add_eos_ = vocab.add_eos;
  t->add_space_prefix_ = vocab.add_space_prefix;
  t->byte_ids_.fill(-1);
  t->types_.resize(n);
  t->texts_.resize(n);
  t->mergeable_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    const std::string& piece = vocab.tokens[i];
    const int byte = parse_byte_piece(piece);
    TokenType type;
    if (!vocab.token_types.empty()) {
      const int32_t raw = vocab.token_types[i];
      if (raw < 0 || raw > 6) {
        return invalid_argument(
            "token " + std::to_string(i) + " has unknown type " + std::to_string(raw),
            "tokenizer.ggml.token_type");
      }
      // 0 is llama.cpp's "undefined"; treat it as an ordinary piece.
      type = raw == 0 ? TokenType::kNormal : static_cast<TokenType>(raw);
    } else if (byte >= 0) {
      type = TokenType::kByte;
    } else if (id == vocab.unk_id) {
      type = TokenType::kUnknown;
    } else if (id == vocab.bos_id || id == vocab.eos_id) {
      type = TokenType::kControl;
    } else {
      type = TokenType::kNormal;
    }
    t->types_[i] = type;
    if (type == TokenType::kByte) {
      if (byte < 0) {
        return invalid_argument("byte token " + std::to_string(i) + " is not of the form <0xXX>",
                                "tokenizer.ggml.tokens");
      }
      if (t->byte_ids_[byte] < 0) t->byte_ids_[byte] = id;
      t->texts_[i] = std::string(1, static_cast<char>(byte));
    } else if (type == TokenType::kNormal || type == TokenType::kUserDefined) {
      t->texts_[i] = replace_space_marker(piece);
      t->mergeable_.emplace(piece, id);  // first id wins on duplicate pieces
    }
  }
  if (t->unk_id_ < 0) {
    for (int b = 0; b < 256; ++b) {
      if (t->byte_ids_[b] < 0) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        return invalid_argument(std::string("vocabulary lacks byte token ") + name +
                                    " and has no unknown token to fall back to",
                                "tokenizer.ggml.unknown_token_id");
      }
    }
  }
  return t;
}

int32_t SpmTokenizer::lookup(std::string_view text) const {
  auto it = mergeable_.find(text);
  return it == mergeable_.end() ? -1 : it->second;
}

std::vector<int32_t> SpmTokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> out;
  if (add_special && add_bos_ && bos_id_ >= 0) out.push_back(bos_id_);

  // Normalise: the dummy prefix, then every ' ' as "▁" (llama2.c keeps ' ' in its vocabulary
  // instead, which is the same thing).
  std::string norm;
  norm.reserve(text.size() + kSpaceMarker.size() * 4);
  if (add_space_prefix_ && !text.empty()) norm.append(kSpaceMarker);
  for (char c : text) {
    if (c == ' ')
      norm.append(kSpaceMarker);
    else
      norm.push_back(c);
  }

  // Split into characters the way llama2.c does: any non-continuation byte starts a character,
  // which takes the continuation bytes after it, at most 4 bytes in all. Ill-formed input thus
  // still splits deterministically and ends up as byte tokens.
  std::vector<Symbol> symbols;
  symbols.reserve(norm.size());
  for (size_t i = 0; i < norm.size();) {
    size_t len = 1;
    while (i + len < norm.size() && len < 4 && (static_cast<uint8_t>(norm[i + len]) & 0xC0) == 0x80)
      ++len;
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, index + 1, static_cast<uint32_t>(i), static_cast<uint32_t>(len),
                       lookup(std::string_view(norm).substr(i, len))});
    i += len;
  }
  if (!symbols.empty()) symbols.back().next = -1;

  // Lazy-deletion priority queue: stale bigrams are skipped when popped. Each merge removes one
  // symbol and queues at most two bigrams, so this is O(n log n).
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    if (l.id < 0 || r.id < 0) return;
    const int32_t id = lookup(std::string_view(norm).substr(l.start, l.len + r.len));
    if (id < 0) return;
    queue.push({scores_[id], left, right, l.len + r.len, id});
  };
  for (size_t i = 1; i < symbols.size(); ++i)
    try_add(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& l = symbols[bigram.left];
    Symbol& r = symbols[bigram.right];
    // Lengths only grow or drop to 0, so an unchanged sum means both are untouched neighbours.
    if (l.len == 0 || r.len == 0 || l.len + r.len != bigram.len) continue;
    l.len += r.len;
    l.id = bigram.id;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = bigram.left;
    r.len = 0;
    try_add(l.prev, bigram.left);
    try_add(bigram.left, l.next);
  }

  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    for (uint32_t k = 0; k < s.len; ++k) {
      const int32_t byte_id = byte_ids_[static_cast<uint8_t>(norm[s.start + k])];
      out.push_back(byte_id >= 0 ? byte_id : unk_id_);  // create() guarantees one of them exists
    }
  }
  if (add_special && add_eos_ && eos_id_ >= 0) out.push_back(eos_id_);
  return out;
}

TokenType SpmTokenizer::token_type(int32_t id) const {
  return in_range(id) ? types_[id] : TokenType::kUnused;
}

bool SpmTokenizer::is_special(int32_t id) const {
  const TokenType type = token_type(id);
  return type == TokenType::kControl || type == TokenType::kUnknown || type == TokenType::kUnused;
}

std::string SpmTokenizer::piece(int32_t id) const {
  return in_range(id) ? pieces_[id] : std::string();
}

std::string SpmTokenizer::token_bytes(int32_t id) const {
  return in_range(id) ? texts_[id] : std::string();
}

std::string SpmTokenizer::token_text(int32_t prev_id, int32_t id, bool skip_special) const {
  if (!in_range(id)) return {};
  if (is_special(id)) return skip_special ? std::string() : pieces_[id];
  const std::string& text = texts_[id];
  // Undo the dummy prefix: only pieces (not byte tokens) carry it, as in llama2.c's decode().
  const bool at_start = prev_id < 0 || prev_id == bos_id_;
  if (add_space_prefix_ && at_start && types_[id] != TokenType::kByte && !text.empty() &&
      text[0] == ' ') {
    return text.substr(1);
  }
  return text;
}

std::string SpmTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  int32_t prev = -1;
  for (int32_t id : ids) {
    out += token_text(prev, id, skip_special);
    prev = id;
  }
  return out;
}

}  // namespace turbine::tokenizer

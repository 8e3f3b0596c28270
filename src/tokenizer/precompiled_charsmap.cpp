#include "tokenizer/precompiled_charsmap.h"

#include <cstring>

namespace turbine::tokenizer {
namespace {

// darts-clone unit accessors.
bool has_leaf(uint32_t unit) {
  return ((unit >> 8) & 1) == 1;
}
uint32_t value(uint32_t unit) {
  return unit & ((1u << 31) - 1);
}
uint32_t label(uint32_t unit) {
  return unit & ((1u << 31) | 0xFF);
}
uint32_t offset(uint32_t unit) {
  return (unit >> 10) << ((unit & (1u << 9)) >> 6);
}

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=')
      break;
    else
      return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

Result<PrecompiledCharsmap> PrecompiledCharsmap::parse(std::string_view blob) {
  PrecompiledCharsmap m;
  if (blob.empty()) return m;
  if (blob.size() < 4)
    return invalid_argument("normalizer Precompiled: charsmap too short", "normalizer");
  uint32_t trie_size = 0;
  for (int i = 3; i >= 0; --i)
    trie_size = (trie_size << 8) | static_cast<uint8_t>(blob[static_cast<size_t>(i)]);
  if (trie_size % 4 != 0 || trie_size > blob.size() - 4)
    return invalid_argument("normalizer Precompiled: bad trie size", "normalizer");
  m.trie_.resize(trie_size / 4);
  for (size_t i = 0; i < m.trie_.size(); ++i) {
    uint32_t u = 0;
    for (int b = 3; b >= 0; --b)
      u = (u << 8) | static_cast<uint8_t>(blob[4 + i * 4 + static_cast<size_t>(b)]);
    m.trie_[i] = u;
  }
  m.normalized_.assign(blob.substr(4 + trie_size));
  return m;
}

std::optional<std::string_view> PrecompiledCharsmap::transform(std::string_view key) const {
  if (trie_.empty()) return std::nullopt;
  size_t node = 0;
  uint32_t unit = trie_[node];
  node ^= offset(unit);
  for (char ch : key) {
    const auto c = static_cast<uint8_t>(ch);
    if (c == 0) break;
    node ^= c;
    if (node >= trie_.size()) return std::nullopt;
    unit = trie_[node];
    if (label(unit) != c) return std::nullopt;
    node ^= offset(unit);
    if (node >= trie_.size()) return std::nullopt;
    if (has_leaf(unit)) {
      const size_t index = value(trie_[node]);
      if (index >= normalized_.size()) return std::nullopt;
      const size_t end = normalized_.find('\0', index);
      return std::string_view(normalized_)
          .substr(index, (end == std::string::npos ? normalized_.size() : end) - index);
    }
  }
  return std::nullopt;
}

}  // namespace turbine::tokenizer

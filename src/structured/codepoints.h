// Sets of Unicode scalar values and their UTF-8 byte-range sequences: the grammar is matched over
// bytes, while character classes (regex, GBNF, JSON strings) are written over code points.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace turbine::structured {

inline constexpr uint32_t kMaxCodePoint = 0x10FFFF;

// Sorted, disjoint, non-adjacent inclusive ranges. Surrogates (U+D800..U+DFFF) are never members:
// they have no UTF-8 encoding.
class CodepointSet {
 public:
  CodepointSet() = default;
  static CodepointSet single(uint32_t cp) { return range(cp, cp); }
  static CodepointSet range(uint32_t lo, uint32_t hi);
  static CodepointSet all() { return range(0, kMaxCodePoint); }

  void add(uint32_t lo, uint32_t hi);
  void add(const CodepointSet& other);
  CodepointSet complement() const;
  CodepointSet intersect(const CodepointSet& other) const;
  CodepointSet minus(const CodepointSet& other) const { return intersect(other.complement()); }
  bool contains(uint32_t cp) const;
  bool empty() const { return ranges_.empty(); }
  const std::vector<std::pair<uint32_t, uint32_t>>& ranges() const { return ranges_; }
  // ASCII letters of the set with their other case added (for case-insensitive formats).
  CodepointSet with_ascii_case_folded() const;

 private:
  void normalize();
  std::vector<std::pair<uint32_t, uint32_t>> ranges_;
};

// One UTF-8 encoding shape: bytes[k] must lie in [lo[k], hi[k]] for k < length.
struct Utf8Sequence {
  int length = 0;
  uint8_t lo[4] = {0, 0, 0, 0};
  uint8_t hi[4] = {0, 0, 0, 0};
};

// The byte-range sequences whose union is exactly the UTF-8 encodings of `set`.
std::vector<Utf8Sequence> utf8_sequences(const CodepointSet& set);

// Decodes one well-formed UTF-8 scalar at s[i]; returns its length (0 if ill-formed).
size_t decode_utf8(const std::string& s, size_t i, uint32_t* cp);

}  // namespace turbine::structured

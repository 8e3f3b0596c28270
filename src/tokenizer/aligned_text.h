// Text that remembers where each of its bytes came from in the caller's original text, so that
// tokens can be mapped back to input offsets after normalization and pre-tokenization (token
// classification reports entities as spans of the input).
//
// The rules follow Hugging Face tokenizers' NormalizedString, so offsets agree with its Python
// binding: a character produced from an input character (mapped, decomposed, lowercased,
// padded with spaces) takes that character's original range; removed characters vanish; a
// composed character takes the range of its first (starter) character; a regex replacement takes
// the range of the last character it replaced. A token's offsets are the union (min start, max
// end) of its bytes' ranges.
//
// A plain value type; not shared between threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turbine::tokenizer {

// [begin, end) byte offsets into the original text.
struct ByteSpan {
  uint32_t begin = 0;
  uint32_t end = 0;
  bool operator==(const ByteSpan&) const = default;
};

struct AlignedText {
  std::string text;
  std::vector<ByteSpan> align;  // one per byte of `text`

  // `original` starting at byte `base` of the caller's text: each byte maps to its own character.
  static AlignedText from_original(std::string_view original, uint32_t base = 0);

  bool empty() const { return text.empty(); }
  // The original range covering text[begin, end) (min start, max end); an empty range maps to
  // the empty span at the original position of `begin` (or of the end of the text).
  ByteSpan original(size_t begin, size_t end) const;
  // text[begin, end) with its alignment.
  AlignedText slice(size_t begin, size_t end) const;
  // Appends one code point that takes `span` as its original range.
  void push(uint32_t cp, ByteSpan span);
  // Appends `bytes` (well-formed UTF-8) all mapped to `span`.
  void push_bytes(std::string_view bytes, ByteSpan span);
};

}  // namespace turbine::tokenizer

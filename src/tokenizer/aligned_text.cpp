#include "tokenizer/aligned_text.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace turbine::tokenizer {

AlignedText AlignedText::from_original(std::string_view original, uint32_t base) {
  AlignedText a;
  a.text.assign(original);
  a.align.resize(original.size());
  for (size_t i = 0; i < original.size();) {
    const size_t n =
        std::min(utf8_sequence_length(static_cast<uint8_t>(original[i])), original.size() - i);
    const ByteSpan span{base + static_cast<uint32_t>(i), base + static_cast<uint32_t>(i + n)};
    for (size_t k = 0; k < n; ++k) a.align[i + k] = span;
    i += n;
  }
  return a;
}

ByteSpan AlignedText::original(size_t begin, size_t end) const {
  if (begin >= end || begin >= align.size()) {
    if (align.empty()) return {};
    const uint32_t at = begin < align.size() ? align[begin].begin : align.back().end;
    return {at, at};
  }
  end = std::min(end, align.size());
  ByteSpan out = align[begin];
  for (size_t i = begin + 1; i < end; ++i) {
    out.begin = std::min(out.begin, align[i].begin);
    out.end = std::max(out.end, align[i].end);
  }
  return out;
}

AlignedText AlignedText::slice(size_t begin, size_t end) const {
  AlignedText a;
  a.text.assign(text, begin, end - begin);
  a.align.assign(align.begin() + static_cast<std::ptrdiff_t>(begin),
                 align.begin() + static_cast<std::ptrdiff_t>(end));
  return a;
}

void AlignedText::push(uint32_t cp, ByteSpan span) {
  const size_t before = text.size();
  append_code_point(text, cp);
  align.insert(align.end(), text.size() - before, span);
}

void AlignedText::push_bytes(std::string_view bytes, ByteSpan span) {
  text.append(bytes);
  align.insert(align.end(), bytes.size(), span);
}

}  // namespace turbine::tokenizer

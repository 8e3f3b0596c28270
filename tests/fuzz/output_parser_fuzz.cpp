// libFuzzer target: the reasoning and tool-call parsers on arbitrary model output. The first byte
// picks the formats, the second seeds the split points. Checks the module's contract
// (src/parsers/stream_parser.h): no crash, single-kind pieces, valid UTF-8 pieces for valid UTF-8
// input, and the same assembled output whether the text comes whole or in pieces.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/utf8.h"
#include "parsers/output_parser.h"

namespace {

using namespace turbine::parsers;

std::unique_ptr<StreamParser> make(uint8_t selector) {
  static constexpr ToolCallFormat kTools[] = {ToolCallFormat::kNone,       ToolCallFormat::kHermes,
                                              ToolCallFormat::kLlama3Json, ToolCallFormat::kMistral,
                                              ToolCallFormat::kDeepSeek,   ToolCallFormat::kJson};
  OutputParserConfig cfg;
  cfg.tool_format = kTools[selector % 6];
  cfg.reasoning_format = static_cast<ReasoningFormat>((selector / 6) % 3);
  cfg.prompt_in_reasoning = (selector / 18) % 2 == 1;
  if ((selector / 36) % 3 == 1) cfg.forced_function = "f";
  if ((selector / 36) % 3 == 2) cfg.tool_options.tool_names = {"get_weather", "f"};
  cfg.tool_options.make_id = [n = 0]() mutable { return "call_" + std::to_string(n++); };
  auto parser = make_output_parser(cfg);
  if (!parser) parser = make_tool_call_parser(ToolCallFormat::kJson, cfg.tool_options);
  return parser;
}

bool same(const ParsedOutput& a, const ParsedOutput& b) {
  if (a.content != b.content || a.reasoning != b.reasoning) return false;
  if (a.tool_calls.size() != b.tool_calls.size()) return false;
  for (size_t i = 0; i < a.tool_calls.size(); ++i) {
    if (a.tool_calls[i].id != b.tool_calls[i].id || a.tool_calls[i].name != b.tool_calls[i].name ||
        a.tool_calls[i].arguments != b.tool_calls[i].arguments) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t selector = data[0];
  uint32_t seed = data[1] + 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  const bool valid = turbine::is_valid_utf8(text);

  auto whole = make(selector);
  const ParsedOutput want = parse_all(*whole, text);

  auto pieces = make(selector);
  Deltas out;
  size_t pos = 0;
  while (pos < text.size()) {
    seed = seed * 1103515245u + 12345u;
    const size_t n = std::min<size_t>(text.size() - pos, (seed >> 16) % 9);
    pieces->feed(text.substr(pos, n), out);
    pos += n;
  }
  pieces->finish(out);
  for (const auto& d : out) {
    const int kinds = !d.content.empty() + !d.reasoning.empty() + !d.tool_calls.empty();
    if (kinds != 1) __builtin_trap();
    if (valid && (!turbine::is_valid_utf8(d.content) || !turbine::is_valid_utf8(d.reasoning))) {
      __builtin_trap();
    }
  }
  if (!same(assemble(out), want)) __builtin_trap();
  if (pieces->tool_calls() != static_cast<int>(want.tool_calls.size())) __builtin_trap();
  return 0;
}

// Cost of the reasoning + tool-call parsers per streamed token (docs/PERFORMANCE.md, issue 20).
// A realistic agent turn (reasoning, a sentence, parallel calls with nested arguments) is fed in
// pieces of `--piece` bytes (about one token) and whole (the unary path); the peer in the same
// run is appending the same pieces to a string, the least any postprocessor does.
//   parsers_bench [--piece 4] [--rounds 2000]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "parsers/output_parser.h"

namespace {

using namespace turbine::parsers;
using Clock = std::chrono::steady_clock;

std::string hermes_turn() {
  std::string s = "<think>\n";
  for (int i = 0; i < 40; ++i)
    s += "The user wants the forecast for several cities; I will call the tool. ";
  s += "\n</think>\n\nLet me check those cities for you.\n";
  for (const char* city : {"Paris", "Rome", "Zürich", "Tokyo"}) {
    s += "<tool_call>\n{\"name\": \"get_forecast\", \"arguments\": {\"city\": \"";
    s += city;
    s +=
        "\", \"days\": [1, 2, 3], \"units\": {\"temp\": \"celsius\", \"wind\": \"km/h\"}, "
        "\"notes\": \"include humidity, pressure and \\\"feels like\\\" values\"}}\n</tool_call>\n";
  }
  return s;
}

std::string deepseek_turn() {
  std::string s;
  for (int i = 0; i < 40; ++i) s += "Okay, the user asks for forecasts, so I should use the tool. ";
  s += "\n</think>\n\n<｜tool▁calls▁begin｜>";
  for (const char* city : {"Paris", "Rome", "Zürich", "Tokyo"}) {
    s += "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_forecast\n```json\n{\"city\": \"";
    s += city;
    s += "\", \"days\": [1, 2, 3], \"units\": {\"temp\": \"celsius\"}}\n```<｜tool▁call▁end｜>";
  }
  s += "<｜tool▁calls▁end｜>";
  return s;
}

struct Result {
  double ns_per_piece;
  size_t pieces;
  size_t deltas;
};

template <typename Fn>
Result time_rounds(int rounds, size_t pieces, Fn&& fn) {
  size_t deltas = 0;
  const auto t0 = Clock::now();
  for (int r = 0; r < rounds; ++r) deltas = fn();
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  return {ns / rounds / static_cast<double>(pieces), pieces, deltas};
}

void run(const char* name, const std::string& text, OutputParserConfig cfg, size_t piece,
         int rounds) {
  cfg.tool_options.make_id = [] { return std::string("call_0"); };
  const size_t pieces = (text.size() + piece - 1) / piece;
  const Result streamed = time_rounds(rounds, pieces, [&] {
    auto parser = make_output_parser(cfg);
    Deltas out;
    for (size_t pos = 0; pos < text.size(); pos += piece) {
      parser->feed(std::string_view(text).substr(pos, piece), out);
    }
    parser->finish(out);
    return out.size();
  });
  const Result unary = time_rounds(rounds, pieces, [&] {
    auto parser = make_output_parser(cfg);
    Deltas out;
    parser->feed(text, out);
    parser->finish(out);
    return out.size();
  });
  const Result append = time_rounds(rounds, pieces, [&] {
    std::string sink;
    for (size_t pos = 0; pos < text.size(); pos += piece) {
      sink.append(std::string_view(text).substr(pos, piece));
    }
    return sink.size();
  });
  std::printf(
      "%-9s %6zu bytes %5zu pieces | streamed %7.1f ns/piece | unary %7.1f ns/piece-equiv"
      " | append peer %5.1f ns/piece | streamed/append %.0fx\n",
      name, text.size(), pieces, streamed.ns_per_piece, unary.ns_per_piece, append.ns_per_piece,
      streamed.ns_per_piece / append.ns_per_piece);
}

}  // namespace

int main(int argc, char** argv) {
  size_t piece = 4;
  int rounds = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--piece") == 0) piece = std::stoul(argv[i + 1]);
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::stoi(argv[i + 1]);
  }
  if (piece == 0 || rounds <= 0) {
    std::fprintf(stderr, "usage: parsers_bench [--piece N>0] [--rounds N>0]\n");
    return 2;
  }
  run("hermes", hermes_turn(),
      {.tool_format = ToolCallFormat::kHermes, .reasoning_format = ReasoningFormat::kThink}, piece,
      rounds);
  run("deepseek", deepseek_turn(),
      {.tool_format = ToolCallFormat::kDeepSeek,
       .reasoning_format = ReasoningFormat::kThink,
       .prompt_in_reasoning = true},
      piece, rounds);
  return 0;
}

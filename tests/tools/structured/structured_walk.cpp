// Emits seeded random walks through constraint masks, for the property test
// (tests/e2e/structured_walk.test.mjs), which validates every output with reference validators.
//
// usage: structured_walk --tokenizer NAME [--shared DIR] [--seed S] [--walks N]
//                        [--max-tokens N] [--soft-tokens N] < specs.jsonl > walks.jsonl
// Input, one per line: {"id": any, "kind": "json_schema"|"json_object"|"regex"|"choice"|
//   "grammar", "text": string (for choice: the JSON array text), "walks": N (optional)}
// Output, one per walk: {"id", "walk", "ok": true, "complete", "tokens", "text"} where text is the
// concatenated token bytes; or one {"id", "ok": false, "error"} when the spec does not compile.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "named_tokenizer.h"
#include "structured/compiler.h"
#include "structured/matcher.h"
#include "walk.h"

using nlohmann::json;
using namespace turbine::structured;

int main(int argc, char** argv) {
  std::filesystem::path shared =
      std::getenv("TURBINE_SHARED") ? std::getenv("TURBINE_SHARED") : "../shared";
  std::string name = "gpt2";
  uint64_t seed = 1;
  int walks = 1;
  test_util::WalkOptions opts;
  opts.soft_tokens = 120;
  opts.max_tokens = 4000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--shared") {
      shared = next();
    } else if (a == "--tokenizer") {
      name = next();
    } else if (a == "--seed") {
      seed = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--walks") {
      walks = std::atoi(next().c_str());
    } else if (a == "--max-tokens") {
      opts.max_tokens = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--soft-tokens") {
      opts.soft_tokens = std::strtoull(next().c_str(), nullptr, 10);
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  auto tok = test_util::load_named_tokenizer(shared, name);
  if (!tok.has_value()) {
    std::fprintf(stderr, "%s\n", tok.status().to_string().c_str());
    return 1;
  }
  auto vocab = Vocabulary::from_tokenizer(**tok);
  if (!vocab.has_value()) {
    std::fprintf(stderr, "%s\n", vocab.status().to_string().c_str());
    return 1;
  }
  GrammarCompiler compiler(*vocab);
  const test_util::Walker walker(**vocab);
  std::mt19937_64 rng(seed);
  const auto emit = [](const json& j) {
    std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  };
  for (std::string line; std::getline(std::cin, line);) {
    if (line.empty()) continue;
    const json in = json::parse(line, nullptr, false);
    if (in.is_discarded() || !in.is_object()) {
      std::fprintf(stderr, "bad input line: %s\n", line.c_str());
      return 2;
    }
    const json id = in.value("id", json());
    const auto kind = parse_constraint_kind(in.value("kind", std::string()));
    if (!kind) {
      emit({{"id", id}, {"ok", false}, {"error", "unknown kind"}});
      continue;
    }
    auto g = compiler.compile({*kind, in.value("text", std::string())});
    if (!g.has_value()) {
      emit({{"id", id}, {"ok", false}, {"error", g.status().message()}});
      continue;
    }
    const int n = in.value("walks", walks);
    for (int w = 0; w < n; ++w) {
      Matcher m(*g);
      const test_util::WalkResult r = walker.walk(m, rng, opts);
      emit({{"id", id},
            {"walk", w},
            {"ok", true},
            {"complete", r.complete},
            {"tokens", r.tokens.size()},
            {"text", r.text}});
    }
    std::cout.flush();
  }
  return 0;
}

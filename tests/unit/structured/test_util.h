// Helpers for the structured-output tests: small byte-level vocabularies, the real tokenizers in
// ../shared (gzipped ones unpacked to a temporary directory), and a brute-force check that a
// matcher's bitmask agrees with accept_token for every token.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "structured/compiled_grammar.h"
#include "structured/grammar.h"
#include "structured/matcher.h"
#include "structured/vocabulary.h"
#include "tokenizer/tokenizer.h"

namespace turbine::structured::test_util {

std::filesystem::path shared_assets();
bool in_ci();

// Id 0 is the stop token, ids 1..256 the single bytes 0..255, then `extra` in order.
std::shared_ptr<const Vocabulary> byte_vocab(const std::vector<std::string>& extra = {});

// A real tokenizer by name: "llama3", "qwen3", "gpt2", "llama2" (tokenizer.json) or "stories260K"
// (the GGUF vocabulary). nullptr if the asset is missing.
std::shared_ptr<const tokenizer::Tokenizer> real_tokenizer(const std::string& name);

std::shared_ptr<const CompiledGrammar> compile_or_die(Result<Grammar> g,
                                                      std::shared_ptr<const Vocabulary> v);

// Whether `text` as raw bytes is a complete output of the grammar.
bool full_match(const std::shared_ptr<const CompiledGrammar>& g, const std::string& text);

// Expects `g` compiled, every text of `matches` a complete output and none of `mismatches` one
// (each failure names its text).
void expect_full_matches(const std::shared_ptr<const CompiledGrammar>& g,
                         const std::vector<std::string>& matches,
                         const std::vector<std::string>& mismatches);

// Compares the bitmask with accept_token (then rollback) for every id; returns the number of
// disagreements and fills `first` with a description of the first.
size_t mask_disagreements(Matcher& m, const Vocabulary& v, std::string* first);

// Token ids of the mask's set bits.
std::vector<int32_t> allowed_ids(const std::vector<uint32_t>& mask, int32_t vocab_size);

}  // namespace turbine::structured::test_util

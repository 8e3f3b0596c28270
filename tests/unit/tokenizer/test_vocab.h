// Test helpers for the tokenizer suite: where the shared assets are, and vocabularies built
// without the GGUF loader (llama2.c's tok512.bin, or a small hand-made one).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"

namespace turbine::tokenizer::test_util {

// $TURBINE_SHARED, else the TURBINE_SHARED_DEFAULT the build defines.
std::filesystem::path shared_assets();

// Reads llama2.c's tokenizer format (int32 max_token_length, then per token: float32 score, int32
// length, bytes) into a GGUF-like "llama" VocabSpec: ' ' in pieces becomes "▁", llama2.c's
// "\n<s>\n" / "\n</s>\n" become "<s>" / "</s>", types 2 (unk, id 0), 3 (BOS 1, EOS 2), 6 (<0xXX>),
// 1 otherwise. std::nullopt when the file is missing or truncated.
std::optional<model::VocabSpec> read_llama2c_vocab(const std::filesystem::path& path,
                                                   int vocab_size);

// A small vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then `pieces` with ids 259, 260, ...
// and scores that fall with the id (earlier pieces merge first).
model::VocabSpec make_small_vocab(const std::vector<std::string>& pieces);

}  // namespace turbine::tokenizer::test_util

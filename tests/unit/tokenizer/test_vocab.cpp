#include "test_vocab.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace turbine::tokenizer::test_util {

std::filesystem::path shared_assets() {
  if (const char* env = std::getenv("TURBINE_SHARED"); env != nullptr && *env != '\0') return env;
  return TURBINE_SHARED_DEFAULT;
}

std::optional<model::VocabSpec> read_llama2c_vocab(const std::filesystem::path& path,
                                                   int vocab_size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  int32_t max_len = 0;
  if (!in.read(reinterpret_cast<char*>(&max_len), sizeof(max_len))) return std::nullopt;
  model::VocabSpec vocab;
  vocab.model = "llama";
  vocab.bos_id = 1;
  vocab.eos_id = 2;
  vocab.unk_id = 0;
  for (int i = 0; i < vocab_size; ++i) {
    float score = 0;
    int32_t len = 0;
    if (!in.read(reinterpret_cast<char*>(&score), sizeof(score))) return std::nullopt;
    if (!in.read(reinterpret_cast<char*>(&len), sizeof(len)) || len < 0 || len > 1024)
      return std::nullopt;
    std::string raw(static_cast<size_t>(len), '\0');
    if (!in.read(raw.data(), len)) return std::nullopt;
    std::string piece;
    int32_t type = 1;
    if (i == 0) {
      piece = raw;
      type = 2;
    } else if (i == 1 || i == 2) {
      piece = i == 1 ? "<s>" : "</s>";
      type = 3;
    } else if (raw.size() == 6 && raw.rfind("<0x", 0) == 0 && raw[5] == '>') {
      piece = raw;
      type = 6;
    } else {
      for (char c : raw) {
        if (c == ' ')
          piece += "\xE2\x96\x81";
        else
          piece += c;
      }
    }
    vocab.tokens.push_back(std::move(piece));
    vocab.scores.push_back(score);
    vocab.token_types.push_back(type);
  }
  return vocab;
}

model::VocabSpec make_small_vocab(const std::vector<std::string>& pieces) {
  model::VocabSpec vocab;
  vocab.model = "llama";
  vocab.bos_id = 1;
  vocab.eos_id = 2;
  vocab.unk_id = 0;
  vocab.tokens = {"<unk>", "<s>", "</s>"};
  vocab.token_types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab.tokens.push_back(name);
    vocab.token_types.push_back(6);
  }
  vocab.scores.assign(vocab.tokens.size(), 0.0f);
  float score = -1.0f;
  for (const std::string& p : pieces) {
    vocab.tokens.push_back(p);
    vocab.token_types.push_back(1);
    vocab.scores.push_back(score);
    score -= 1.0f;
  }
  return vocab;
}

}  // namespace turbine::tokenizer::test_util

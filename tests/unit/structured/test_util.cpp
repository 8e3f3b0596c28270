#include "test_util.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <mutex>

#include "named_tokenizer.h"

namespace turbine::structured::test_util {

namespace fs = std::filesystem;

fs::path shared_assets() {
  if (const char* env = std::getenv("TURBINE_SHARED"); env != nullptr && *env != '\0') return env;
  return TURBINE_SHARED_DEFAULT;
}

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::shared_ptr<const Vocabulary> byte_vocab(const std::vector<std::string>& extra) {
  std::vector<std::string> toks = {""};
  for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
  toks.insert(toks.end(), extra.begin(), extra.end());
  auto v = Vocabulary::from_tokens(std::move(toks), {}, {0});
  if (!v.has_value()) std::abort();
  return *v;
}

namespace {

std::shared_ptr<const tokenizer::Tokenizer> load(const std::string& name) {
  auto tok = load_named_tokenizer(shared_assets(), name);
  if (!tok.has_value()) return nullptr;
  return std::shared_ptr<const tokenizer::Tokenizer>(std::move(*tok));
}

}  // namespace

std::shared_ptr<const tokenizer::Tokenizer> real_tokenizer(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const tokenizer::Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  auto tok = load(name);
  cache[name] = tok;
  return tok;
}

std::shared_ptr<const CompiledGrammar> compile_or_die(Result<Grammar> g,
                                                      std::shared_ptr<const Vocabulary> v) {
  if (!g.has_value()) {
    ADD_FAILURE() << "grammar: " << g.status().to_string();
    return nullptr;
  }
  auto c = CompiledGrammar::compile(*g, std::move(v), CompileLimits{});
  if (!c.has_value()) {
    ADD_FAILURE() << "compile: " << c.status().to_string();
    return nullptr;
  }
  return *c;
}

bool full_match(const std::shared_ptr<const CompiledGrammar>& g, const std::string& text) {
  Matcher m(g);
  if (text.empty()) return m.can_terminate();
  return m.accept_bytes(text) && m.can_terminate();
}

void expect_full_matches(const std::shared_ptr<const CompiledGrammar>& g,
                         const std::vector<std::string>& matches,
                         const std::vector<std::string>& mismatches) {
  ASSERT_NE(g, nullptr);
  for (const std::string& t : matches) EXPECT_TRUE(full_match(g, t)) << "should match: " << t;
  for (const std::string& t : mismatches) {
    EXPECT_FALSE(full_match(g, t)) << "should not match: " << t;
  }
}

size_t mask_disagreements(Matcher& m, const Vocabulary& v, std::string* first) {
  std::vector<uint32_t> mask(v.mask_words());
  m.fill_next_token_bitmask(mask.data());
  size_t bad = 0;
  for (int32_t id = 0; id < v.size(); ++id) {
    const bool in_mask = (mask[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1;
    const bool accepted = m.accept_token(id);
    if (accepted) m.rollback(1);
    if (in_mask != accepted) {
      if (bad == 0 && first != nullptr) {
        *first = "token " + std::to_string(id) + " '" + v.bytes(id) + "': mask " +
                 std::to_string(in_mask) + ", accept " + std::to_string(accepted);
      }
      ++bad;
    }
  }
  return bad;
}

std::vector<int32_t> allowed_ids(const std::vector<uint32_t>& mask, int32_t vocab_size) {
  std::vector<int32_t> out;
  for (int32_t id = 0; id < vocab_size; ++id) {
    if ((mask[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1) out.push_back(id);
  }
  return out;
}

}  // namespace turbine::structured::test_util

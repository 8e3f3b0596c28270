#include "cli/tokenize_command.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace turbine::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct TokenizeArgs {
  std::string tokenizer;
  bool add_special = false;
  bool decode = false;
  bool skip_special = false;
  bool chat = false;
};

Result<std::unique_ptr<tokenizer::Tokenizer>> load(const std::string& spec) {
  const fs::path path(spec);
  std::error_code ec;
  if (!fs::exists(path, ec)) return not_found("no such file or folder: " + spec, "--tokenizer");
  fs::path tokenizer_json;
  fs::path config;
  if (fs::is_directory(path, ec)) {
    tokenizer_json = path / "tokenizer.json";
    if (!fs::exists(tokenizer_json, ec)) {
      // A folder without tokenizer.json may still be a model the loader understands.
      TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<model::Model> m, model::load_model(path));
      return tokenizer::make_tokenizer(m->vocab());
    }
    if (fs::exists(path / "tokenizer_config.json", ec)) config = path / "tokenizer_config.json";
  } else if (path.extension() == ".json") {
    tokenizer_json = path;
    const fs::path sibling = path.parent_path() / "tokenizer_config.json";
    if (fs::exists(sibling, ec)) config = sibling;
  } else {
    TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<model::Model> m, model::load_model(path));
    return tokenizer::make_tokenizer(m->vocab());
  }
  TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::HfTokenizer> hf,
                           tokenizer::HfTokenizer::from_files(tokenizer_json, config));
  return std::unique_ptr<tokenizer::Tokenizer>(std::move(hf));
}

// One output line for one input line; never throws (bad input becomes {"error": ...}).
std::string handle_line(const tokenizer::Tokenizer& tok, const TokenizeArgs& a, const std::string& line) {
  const json in = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_object()) return json{{"error", "expected a JSON object"}}.dump();
  if (!a.decode) {
    const auto text = in.find("text");
    if (text == in.end() || !text->is_string()) return json{{"error", "expected {\"text\": string}"}}.dump();
    return json{{"ids", tok.encode(text->get_ref<const std::string&>(), a.add_special)}}.dump();
  }
  const auto ids = in.find("ids");
  if (ids == in.end() || !ids->is_array()) return json{{"error", "expected {\"ids\": [integers]}"}}.dump();
  std::vector<int32_t> values;
  values.reserve(ids->size());
  for (const json& id : *ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= tok.vocab_size()) {
      return json{{"error", "ids: expected integers in [0, " + std::to_string(tok.vocab_size()) + ")"}}.dump();
    }
    values.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return json{{"text", tokenizer::sanitize_utf8(tok.decode(values, a.skip_special))}}.dump();
}

int run(const TokenizeArgs& a) {
  if (a.chat) {
    std::fprintf(stderr, "turbine tokenize: error: --chat is not implemented yet (needs the chat template engine)\n");
    return 2;
  }
  auto tok = load(a.tokenizer);
  if (!tok.has_value()) {
    std::fprintf(stderr, "turbine tokenize: error: %s\n", tok.status().message().c_str());
    return 2;
  }
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::string out;
    try {
      out = handle_line(**tok, a, line);
    } catch (const std::exception& e) {  // nlohmann's type errors; keep going with the next line
      out = json{{"error", tokenizer::sanitize_utf8(e.what())}}.dump();
    }
    std::cout << out << '\n';
  }
  std::cout.flush();
  return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand("tokenize", "Encode or decode JSON lines with a model's tokenizer");
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.json, model folder, or GGUF file")->required();
  cmd->add_flag("--add-special-tokens", args->add_special, "Add the tokenizer's BOS/EOS when encoding");
  cmd->add_flag("--decode", args->decode, "Read {\"ids\": [...]} and write {\"text\": ...}");
  cmd->add_flag("--skip-special-tokens", args->skip_special, "With --decode: leave special tokens out");
  cmd->add_flag("--chat", args->chat, "Render chat messages first (not implemented yet)");
  cmd->callback([args] { std::exit(run(*args)); });
}

}  // namespace turbine::cli

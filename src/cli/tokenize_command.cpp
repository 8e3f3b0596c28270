#include "cli/tokenize_command.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "frontend/chat_prompt.h"
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

// The tokenizer and, for --chat, the chat template with the bos/eos strings it is given.
struct Loaded {
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::string chat_template;  // empty: none found
  std::string bos_token;
  std::string eos_token;
};

// A special token in tokenizer_config.json: a string, or an AddedToken object with "content".
std::string config_token(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return {};
}

// The template transformers would use: tokenizer_config.json's chat_template (a string, or a list
// of named ones where "default" wins), else chat_template.jinja next to it.
void read_hf_chat_template(const fs::path& dir, const fs::path& config_path, Loaded& out) {
  std::error_code ec;
  if (!config_path.empty()) {
    std::ifstream in(config_path, std::ios::binary);
    const json config = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (config.is_object()) {
      out.bos_token = config_token(config, "bos_token");
      out.eos_token = config_token(config, "eos_token");
      if (auto t = config.find("chat_template"); t != config.end()) {
        if (t->is_string()) {
          out.chat_template = t->get<std::string>();
        } else if (t->is_array()) {
          for (const json& e : *t) {
            if (!e.is_object() || !e.contains("template") || !e["template"].is_string()) continue;
            if (out.chat_template.empty() || e.value("name", "") == "default") {
              out.chat_template = e["template"].get<std::string>();
            }
          }
        }
      }
    }
  }
  if (out.chat_template.empty() && fs::exists(dir / "chat_template.jinja", ec)) {
    std::ifstream in(dir / "chat_template.jinja", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out.chat_template = ss.str();
  }
}

Result<Loaded> from_model(const fs::path& path) {
  TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<model::Model> m, model::load_model(path));
  Loaded out;
  TURBINE_ASSIGN_OR_RETURN(out.tokenizer, tokenizer::make_tokenizer(m->vocab()));
  out.chat_template = m->vocab().chat_template;
  const int32_t bos = out.tokenizer->bos_id();
  const int32_t eos = out.tokenizer->eos_id();
  if (bos >= 0) out.bos_token = out.tokenizer->piece(bos);
  if (eos >= 0) out.eos_token = out.tokenizer->piece(eos);
  return out;
}

Result<Loaded> load(const std::string& spec) {
  const fs::path path(spec);
  std::error_code ec;
  if (!fs::exists(path, ec)) return not_found("no such file or folder: " + spec, "--tokenizer");
  fs::path tokenizer_json;
  fs::path config;
  if (fs::is_directory(path, ec)) {
    tokenizer_json = path / "tokenizer.json";
    // A folder without tokenizer.json may still be a model the loader understands.
    if (!fs::exists(tokenizer_json, ec)) return from_model(path);
    if (fs::exists(path / "tokenizer_config.json", ec)) config = path / "tokenizer_config.json";
  } else if (path.extension() == ".json") {
    tokenizer_json = path;
    const fs::path sibling = path.parent_path() / "tokenizer_config.json";
    if (fs::exists(sibling, ec)) config = sibling;
  } else {
    return from_model(path);
  }
  TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::HfTokenizer> hf,
                           tokenizer::HfTokenizer::from_files(tokenizer_json, config));
  Loaded out;
  out.tokenizer = std::move(hf);
  read_hf_chat_template(tokenizer_json.parent_path(), config, out);
  return out;
}

using OrderedJson = nlohmann::ordered_json;

// --chat: {"messages": [...], "tools"?: [...], "add_generation_prompt"?: bool (default true),
// "continue_final_message"?: bool, "kwargs"?: {...}} -> {"prompt": text, "ids": [...]}. The
// messages go to the template as they are (transformers' apply_chat_template), key order kept.
std::string handle_chat_line(const tokenizer::Tokenizer& tok, const chat::ChatTemplate& tmpl,
                             const Loaded& loaded, const TokenizeArgs& a, const std::string& line) {
  const OrderedJson in = OrderedJson::parse(line, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_object()) return json{{"error", "expected a JSON object"}}.dump();
  frontend::ChatTemplateInputs inputs;
  const auto messages = in.find("messages");
  if (messages == in.end() || !messages->is_array()) {
    return json{{"error", "expected {\"messages\": [...]}"}}.dump();
  }
  inputs.messages = *messages;
  if (auto t = in.find("tools"); t != in.end() && !t->is_null()) {
    if (!t->is_array()) return json{{"error", "tools: expected an array"}}.dump();
    if (!t->empty()) inputs.tools = *t;
  }
  if (auto k = in.find("kwargs"); k != in.end() && !k->is_null()) {
    if (!k->is_object()) return json{{"error", "kwargs: expected an object"}}.dump();
    inputs.kwargs = *k;
  }
  for (auto [key, out] : {std::pair{"add_generation_prompt", &inputs.add_generation_prompt},
                          std::pair{"continue_final_message", &inputs.continue_final_message}}) {
    if (auto b = in.find(key); b != in.end() && !b->is_null()) {
      if (!b->is_boolean())
        return json{{"error", std::string(key) + ": expected a boolean"}}.dump();
      *out = b->get<bool>();
    }
  }
  auto text = frontend::render_chat_template(tmpl, inputs, loaded.bos_token, loaded.eos_token);
  if (!text) return json{{"error", tokenizer::sanitize_utf8(text.status().message())}}.dump();
  return json{{"prompt", *text}, {"ids", tok.encode(*text, a.add_special)}}.dump();
}

// One output line for one input line; never throws (bad input becomes {"error": ...}).
std::string handle_line(const tokenizer::Tokenizer& tok, const TokenizeArgs& a,
                        const std::string& line) {
  const json in = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_object()) return json{{"error", "expected a JSON object"}}.dump();
  if (!a.decode) {
    const auto text = in.find("text");
    if (text == in.end() || !text->is_string())
      return json{{"error", "expected {\"text\": string}"}}.dump();
    return json{{"ids", tok.encode(text->get_ref<const std::string&>(), a.add_special)}}.dump();
  }
  const auto ids = in.find("ids");
  if (ids == in.end() || !ids->is_array())
    return json{{"error", "expected {\"ids\": [integers]}"}}.dump();
  std::vector<int32_t> values;
  values.reserve(ids->size());
  for (const json& id : *ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= tok.vocab_size()) {
      return json{
          {"error", "ids: expected integers in [0, " + std::to_string(tok.vocab_size()) + ")"}}
          .dump();
    }
    values.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return json{{"text", tokenizer::sanitize_utf8(tok.decode(values, a.skip_special))}}.dump();
}

int run(const TokenizeArgs& a) {
  if (a.chat && a.decode) {
    std::fprintf(stderr, "turbine tokenize: error: --chat and --decode cannot be combined\n");
    return 2;
  }
  auto loaded = load(a.tokenizer);
  if (!loaded.has_value()) {
    std::fprintf(stderr, "turbine tokenize: error: %s\n", loaded.status().message().c_str());
    return 2;
  }
  const tokenizer::Tokenizer& tok = *loaded->tokenizer;
  std::optional<chat::ChatTemplate> tmpl;
  if (a.chat) {
    if (loaded->chat_template.empty()) {
      std::fprintf(stderr, "turbine tokenize: error: --chat: %s has no chat template\n",
                   a.tokenizer.c_str());
      return 2;
    }
    auto parsed = chat::ChatTemplate::parse(loaded->chat_template);
    if (!parsed) {
      std::fprintf(stderr,
                   "turbine tokenize: error: --chat: the chat template does not parse: %s\n",
                   parsed.status().message().c_str());
      return 2;
    }
    tmpl.emplace(std::move(*parsed));
  }
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::string out;
    try {
      out = tmpl ? handle_chat_line(tok, *tmpl, *loaded, a, line) : handle_line(tok, a, line);
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
  auto* cmd =
      app.add_subcommand("tokenize", "Encode or decode JSON lines with a model's tokenizer");
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.json, model folder, or GGUF file")
      ->required();
  cmd->add_flag("--add-special-tokens", args->add_special,
                "Add the tokenizer's BOS/EOS when encoding");
  cmd->add_flag("--decode", args->decode, "Read {\"ids\": [...]} and write {\"text\": ...}");
  cmd->add_flag("--skip-special-tokens", args->skip_special,
                "With --decode: leave special tokens out");
  cmd->add_flag("--chat", args->chat,
                "Read {\"messages\": [...], \"tools\", \"add_generation_prompt\", \"kwargs\"}, "
                "render the chat template, write {\"prompt\", \"ids\"}");
  cmd->callback([args] { std::exit(run(*args)); });
}

}  // namespace turbine::cli

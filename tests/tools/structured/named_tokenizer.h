// Loads a real tokenizer from the shared assets by name, for the structured-output tests, bench
// and walk tool: "llama3", "qwen3", "gpt2", "llama2", ... (tokenizers/NAME/tokenizer.json, or the
// .json.gz unpacked once into the system temp directory) or "stories260K" (the GGUF vocabulary).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <unistd.h>

#include "common/status.h"
#include "model/model.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace turbine::structured::test_util {

inline Result<std::unique_ptr<tokenizer::Tokenizer>> load_named_tokenizer(
    const std::filesystem::path& shared, const std::string& name) {
  namespace fs = std::filesystem;
  if (name == "stories260K") {
    TURBINE_ASSIGN_OR_RETURN(
        auto model, model::load_model(shared / "models" / "stories260K" / "stories260K.gguf"));
    return tokenizer::make_tokenizer(model->vocab());
  }
  const fs::path dir = shared / "tokenizers" / name;
  fs::path json = dir / "tokenizer.json";
  if (!fs::exists(json) && fs::exists(dir / "tokenizer.json.gz")) {
    json = fs::temp_directory_path() / ("turbine_structured_" + name + ".tokenizer.json");
    if (!fs::exists(json)) {
      // Unpack to a private name, then rename: concurrent tests never read a partial file.
      const fs::path part = json.string() + "." + std::to_string(::getpid());
      const std::string cmd =
          "gzip -dc '" + (dir / "tokenizer.json.gz").string() + "' > '" + part.string() + "'";
      if (std::system(cmd.c_str()) != 0) return not_found("cannot unpack " + name);
      std::error_code ec;
      fs::rename(part, json, ec);
      if (ec) return not_found("cannot unpack " + name + ": " + ec.message());
    }
  }
  if (!fs::exists(json)) return not_found("no tokenizer '" + name + "' under " + dir.string());
  TURBINE_ASSIGN_OR_RETURN(auto tok,
                           tokenizer::HfTokenizer::from_files(json, dir / "tokenizer_config.json"));
  return std::unique_ptr<tokenizer::Tokenizer>(std::move(tok));
}

}  // namespace turbine::structured::test_util

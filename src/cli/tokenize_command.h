// `turbine tokenize`: text <-> token ids with a model's tokenizer, as JSON lines on stdin/stdout.
#pragma once

#include <CLI/CLI.hpp>

namespace turbine::cli {

// Registers the `tokenize` subcommand:
//   turbine tokenize --tokenizer PATH [--add-special-tokens] [--decode [--skip-special-tokens]]
// PATH is a tokenizer.json, a model folder (tokenizer.json + tokenizer_config.json) or a GGUF file.
// Each stdin line {"text": "..."} gives {"ids": [...]}; with --decode, {"ids": [...]} gives
// {"text": "..."}. A bad line gives {"error": "..."} and the next line is read. Exits 0 at end of
// input, 2 when the tokenizer cannot be loaded or the arguments are bad.
// With --chat, each line {"messages": [...], "tools"?: [...], "add_generation_prompt"?: bool,
// "continue_final_message"?: bool, "kwargs"?: {...}} is rendered with the chat template of PATH
// (tokenizer_config.json / chat_template.jinja / GGUF tokenizer.chat_template) and gives
// {"prompt": text, "ids": [...]}; ids have no BOS/EOS added unless --add-special-tokens.
void add_tokenize_command(CLI::App& app);

}  // namespace turbine::cli

// The chat template lexer (template_lexer.cpp), shared by tokenize_template and the parser.
// Pure functions; safe on any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "chat/template_parser.h"
#include "common/status.h"

namespace turbine::chat {

// The source after @huggingface/jinja's preprocessing (generation tags removed, block
// whitespace control applied); lex_template and error offsets refer to this text.
std::string preprocess_template(std::string_view source);
// Tokens of preprocessed text.
Result<std::vector<Token>> lex_template(std::string preprocessed);
// " (line N)" for an offset into preprocessed text, for error messages.
std::string template_line_info(std::string_view src, size_t offset);

}  // namespace turbine::chat

// Lexer and parser for the Jinja subset that Hugging Face chat templates use.
//
// Tokenizing follows @huggingface/jinja exactly (including its lstrip_blocks/trim_blocks
// preprocessing and `{% generation %}` removal), since whitespace is where renderers disagree.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chat/template_ast.h"
#include "common/status.h"

namespace turbine::chat {

enum class TokenType {
  kText,
  kNumericLiteral,
  kStringLiteral,
  kIdentifier,
  kEquals,
  kOpenParen,
  kCloseParen,
  kOpenStatement,
  kCloseStatement,
  kOpenExpression,
  kCloseExpression,
  kOpenSquareBracket,
  kCloseSquareBracket,
  kOpenCurlyBracket,
  kCloseCurlyBracket,
  kComma,
  kDot,
  kColon,
  kPipe,
  kAdditiveOperator,        // + - ~
  kMultiplicativeOperator,  // * / // %
  kExponentOperator,        // **
  kComparisonOperator,      // < > <= >= == !=
  kUnaryOperator,           // - + (prefix)
  kComment,
  kEnd,  // past the last token
};

struct Token {
  TokenType type;
  std::string value;
  size_t offset = 0;  // byte offset in the preprocessed source, for messages
};

struct ParseLimits {
  // Recursive parse steps in progress: two per nested block, one per parenthesis or chained
  // `x if c else ...`, `not`, unary sign.
  int max_nesting = 128;
  int max_expression_depth = 128;  // height of one expression tree (a + b + c + ... chains)
};

Result<std::vector<Token>> tokenize_template(std::string_view source);
Result<std::unique_ptr<Program>> parse_template(std::string_view source, const ParseLimits& limits);

}  // namespace turbine::chat

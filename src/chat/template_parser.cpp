#include "chat/template_parser.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "chat/template_lexer.h"
#include "chat/value.h"
#include "common/utf8.h"

namespace turbine::chat {

namespace {

// ---- parser -----------------------------------------------------------------------------------

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& src, const ParseLimits& limits)
      : tokens_(std::move(tokens)), src_(src), limits_(limits) {}

  Result<std::unique_ptr<Program>> run() {
    auto program = std::make_unique<Program>();
    while (current_ < tokens_.size()) {
      TURBINE_ASSIGN_OR_RETURN(NodePtr n, parse_any());
      program->body.push_back(std::move(n));
    }
    return program;
  }

 private:
  // Bounds recursion: every recursive parse step holds one.
  class NestingGuard {
   public:
    explicit NestingGuard(Parser& p) : p_(p) { ++p_.nesting_; }
    ~NestingGuard() { --p_.nesting_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    Parser& p_;
  };
  Status check_nesting() const {
    if (nesting_ > limits_.max_nesting) {
      return error("template nested deeper than " + std::to_string(limits_.max_nesting) +
                   " levels");
    }
    return Status::ok();
  }

  const Token& peek(size_t k = 0) const {
    static const Token kEnd{TokenType::kEnd, "", 0};
    return current_ + k < tokens_.size() ? tokens_[current_ + k] : kEnd;
  }
  bool is(TokenType t, size_t k = 0) const { return peek(k).type == t; }
  bool is_identifier(std::string_view name, size_t k = 0) const {
    return peek(k).type == TokenType::kIdentifier && peek(k).value == name;
  }
  bool is_statement(std::initializer_list<std::string_view> names) const {
    if (!is(TokenType::kOpenStatement) || !is(TokenType::kIdentifier, 1)) return false;
    return std::find(names.begin(), names.end(), peek(1).value) != names.end();
  }
  Status error(const std::string& msg) const {
    size_t offset = current_ < tokens_.size() ? tokens_[current_].offset : src_.size();
    return invalid_argument("chat template syntax error: " + msg +
                            template_line_info(src_, offset));
  }
  static const char* type_name(TokenType t) {
    switch (t) {
      case TokenType::kText: return "text";
      case TokenType::kNumericLiteral: return "number";
      case TokenType::kStringLiteral: return "string";
      case TokenType::kIdentifier: return "identifier";
      case TokenType::kEquals: return "'='";
      case TokenType::kOpenParen: return "'('";
      case TokenType::kCloseParen: return "')'";
      case TokenType::kOpenStatement: return "'{%'";
      case TokenType::kCloseStatement: return "'%}'";
      case TokenType::kOpenExpression: return "'{{'";
      case TokenType::kCloseExpression: return "'}}'";
      case TokenType::kOpenSquareBracket: return "'['";
      case TokenType::kCloseSquareBracket: return "']'";
      case TokenType::kOpenCurlyBracket: return "'{'";
      case TokenType::kCloseCurlyBracket: return "'}'";
      case TokenType::kComma: return "','";
      case TokenType::kDot: return "'.'";
      case TokenType::kColon: return "':'";
      case TokenType::kPipe: return "'|'";
      case TokenType::kAdditiveOperator: return "operator";
      case TokenType::kMultiplicativeOperator: return "operator";
      case TokenType::kExponentOperator: return "'**'";
      case TokenType::kComparisonOperator: return "comparison";
      case TokenType::kUnaryOperator: return "unary operator";
      case TokenType::kComment: return "comment";
      case TokenType::kEnd: return "end of template";
    }
    return "token";
  }
  Result<Token> expect(TokenType t, const char* what) {
    if (!is(t)) {
      return error(std::string("expected ") + what + ", got " + type_name(peek().type));
    }
    return tokens_[current_++];
  }
  Status expect_identifier(std::string_view name) {
    if (!is_identifier(name)) return error("expected '" + std::string(name) + "'");
    ++current_;
    return Status::ok();
  }
  // Closes a block: `{% endX %}`.
  Status expect_end(std::string_view name) {
    TURBINE_RETURN_IF_ERROR(expect(TokenType::kOpenStatement, "'{%'").status());
    TURBINE_RETURN_IF_ERROR(expect_identifier(name));
    return expect(TokenType::kCloseStatement, "'%}'").status();
  }
  NodePtr make(NodeKind k) { return std::make_unique<Node>(k); }
  // Sets the node's height from its expression children and enforces the limit.
  Result<NodePtr> finish(NodePtr n) {
    int d = 0;
    for (const NodePtr* child : {&n->a, &n->b, &n->c}) {
      if (*child) d = std::max(d, (*child)->depth);
    }
    for (const NodePtr& child : n->list) d = std::max(d, child->depth);
    for (const auto& [k, v] : n->pairs) d = std::max({d, k->depth, v->depth});
    n->depth = d + 1;
    if (n->depth > limits_.max_expression_depth) {
      return error("expression nested deeper than " + std::to_string(limits_.max_expression_depth) +
                   " levels");
    }
    return n;
  }
  // Collects statements until one of `names` opens a tag.
  Result<NodeList> parse_until(std::initializer_list<std::string_view> names) {
    NodeList out;
    while (!is_statement(names)) {
      if (is(TokenType::kEnd)) {
        std::string list;
        for (std::string_view n : names) list += (list.empty() ? "" : "/") + std::string(n);
        return error("unexpected end of template: missing {% " + list + " %}");
      }
      TURBINE_ASSIGN_OR_RETURN(NodePtr n, parse_any());
      out.push_back(std::move(n));
    }
    return out;
  }

  Result<NodePtr> parse_any() {
    NestingGuard guard(*this);
    TURBINE_RETURN_IF_ERROR(check_nesting());
    switch (peek().type) {
      case TokenType::kComment: {
        auto n = make(NodeKind::kComment);
        n->text = tokens_[current_++].value;
        return n;
      }
      case TokenType::kText: {
        auto n = make(NodeKind::kText);
        n->text = tokens_[current_++].value;
        return n;
      }
      case TokenType::kOpenStatement: return parse_statement();
      case TokenType::kOpenExpression: {
        ++current_;
        TURBINE_ASSIGN_OR_RETURN(NodePtr e, parse_expression());
        TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseExpression, "'}}'").status());
        return e;
      }
      default: return error(std::string("unexpected ") + type_name(peek().type));
    }
  }

  Result<NodePtr> parse_statement() {
    ++current_;  // {%
    if (!is(TokenType::kIdentifier)) {
      return error(std::string("unknown statement, got ") + type_name(peek().type));
    }
    const std::string name = peek().value;
    ++current_;
    if (name == "set") return parse_set();
    if (name == "if") {
      TURBINE_ASSIGN_OR_RETURN(NodePtr n, parse_if());
      TURBINE_RETURN_IF_ERROR(expect_end("endif"));
      return n;
    }
    if (name == "for") {
      TURBINE_ASSIGN_OR_RETURN(NodePtr n, parse_for());
      TURBINE_RETURN_IF_ERROR(expect_end("endfor"));
      return n;
    }
    if (name == "macro") {
      TURBINE_ASSIGN_OR_RETURN(NodePtr n, parse_macro());
      TURBINE_RETURN_IF_ERROR(expect_end("endmacro"));
      return n;
    }
    if (name == "break" || name == "continue") {
      TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
      return make(name == "break" ? NodeKind::kBreak : NodeKind::kContinue);
    }
    if (name == "filter") {
      auto n = make(NodeKind::kFilterBlock);
      TURBINE_ASSIGN_OR_RETURN(n->a, parse_filter_node());
      TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
      TURBINE_ASSIGN_OR_RETURN(n->body, parse_until({"endfilter"}));
      TURBINE_RETURN_IF_ERROR(expect_end("endfilter"));
      return n;
    }
    --current_;
    return error("unknown statement '" + name + "'");
  }

  Result<NodePtr> parse_set() {
    auto n = make(NodeKind::kSet);
    TURBINE_ASSIGN_OR_RETURN(n->a, parse_expression_sequence(false));
    if (is(TokenType::kEquals)) {
      ++current_;
      TURBINE_ASSIGN_OR_RETURN(n->b, parse_expression_sequence(false));
    } else {
      TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
      TURBINE_ASSIGN_OR_RETURN(n->body, parse_until({"endset"}));
      TURBINE_RETURN_IF_ERROR(expect(TokenType::kOpenStatement, "'{%'").status());
      TURBINE_RETURN_IF_ERROR(expect_identifier("endset"));
    }
    TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
    return n;
  }

  // After `{% if` / `{% elif`; leaves `{% endif %}` to the caller.
  Result<NodePtr> parse_if() {
    NestingGuard guard(*this);
    TURBINE_RETURN_IF_ERROR(check_nesting());
    auto n = make(NodeKind::kIf);
    TURBINE_ASSIGN_OR_RETURN(n->a, parse_expression());
    TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
    TURBINE_ASSIGN_OR_RETURN(n->body, parse_until({"elif", "else", "endif"}));
    if (is_statement({"elif"})) {
      current_ += 2;
      TURBINE_ASSIGN_OR_RETURN(NodePtr elif, parse_if());
      n->alternate.push_back(std::move(elif));
    } else if (is_statement({"else"})) {
      current_ += 2;
      TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
      TURBINE_ASSIGN_OR_RETURN(n->alternate, parse_until({"endif"}));
    }
    return n;
  }

  Result<NodePtr> parse_for() {
    auto n = make(NodeKind::kFor);
    TURBINE_ASSIGN_OR_RETURN(n->a, parse_expression_sequence(true));
    if (n->a->kind != NodeKind::kIdentifier && n->a->kind != NodeKind::kTuple) {
      return error("expected identifier/tuple for the loop variable");
    }
    if (!is_identifier("in")) return error("expected 'in' after the loop variable");
    ++current_;
    TURBINE_ASSIGN_OR_RETURN(n->b, parse_expression());
    TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
    TURBINE_ASSIGN_OR_RETURN(n->body, parse_until({"endfor", "else"}));
    if (is_statement({"else"})) {
      current_ += 2;
      TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
      TURBINE_ASSIGN_OR_RETURN(n->alternate, parse_until({"endfor"}));
    }
    return n;
  }

  Result<NodePtr> parse_macro() {
    auto n = make(NodeKind::kMacro);
    TURBINE_ASSIGN_OR_RETURN(NodePtr name, parse_primary());
    if (name->kind != NodeKind::kIdentifier) return error("expected identifier after 'macro'");
    n->text = name->text;
    TURBINE_ASSIGN_OR_RETURN(n->list, parse_args(true));
    TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
    TURBINE_ASSIGN_OR_RETURN(n->body, parse_until({"endmacro"}));
    bool declares_varargs = false, declares_kwargs = false;
    for (const NodePtr& p : n->list) {
      declares_varargs |= p->text == "varargs";  // identifier or keyword parameter name
      declares_kwargs |= p->text == "kwargs";
    }
    n->uses_varargs = !declares_varargs && mentions(n->body, "varargs");
    n->uses_kwargs = !declares_kwargs && mentions(n->body, "kwargs");
    return n;
  }

  // Whether an identifier named `name` appears anywhere below (tree height is bounded).
  static bool mentions(const NodeList& nodes, std::string_view name) {
    for (const NodePtr& n : nodes) {
      if (mentions(n.get(), name)) return true;
    }
    return false;
  }
  static bool mentions(const Node* n, std::string_view name) {
    if (!n) return false;
    if (n->kind == NodeKind::kIdentifier && n->text == name) return true;
    if (mentions(n->a.get(), name) || mentions(n->b.get(), name) || mentions(n->c.get(), name)) {
      return true;
    }
    if (mentions(n->list, name) || mentions(n->body, name) || mentions(n->alternate, name)) {
      return true;
    }
    for (const auto& [k, v] : n->pairs) {
      if (mentions(k.get(), name) || mentions(v.get(), name)) return true;
    }
    return false;
  }

  Result<NodePtr> parse_expression_sequence(bool primary) {
    NodeList items;
    {
      auto first = primary ? parse_primary() : parse_expression();
      if (!first) return first.status();
      items.push_back(std::move(first).value());
    }
    if (!is(TokenType::kComma)) return std::move(items.front());
    while (is(TokenType::kComma)) {
      ++current_;
      auto next = primary ? parse_primary() : parse_expression();
      if (!next) return next.status();
      items.push_back(std::move(next).value());
    }
    auto t = make(NodeKind::kTuple);
    t->list = std::move(items);
    return finish(std::move(t));
  }

  Result<NodePtr> parse_expression() { return parse_if_expression(); }

  Result<NodePtr> parse_if_expression() {
    NestingGuard guard(*this);
    TURBINE_RETURN_IF_ERROR(check_nesting());
    TURBINE_ASSIGN_OR_RETURN(NodePtr value, parse_or());
    if (!is_identifier("if")) return value;
    ++current_;
    TURBINE_ASSIGN_OR_RETURN(NodePtr test, parse_or());
    if (is_identifier("else")) {
      ++current_;
      auto n = make(NodeKind::kTernary);
      n->a = std::move(test);
      n->b = std::move(value);
      TURBINE_ASSIGN_OR_RETURN(n->c, parse_if_expression());
      return finish(std::move(n));
    }
    auto n = make(NodeKind::kSelect);
    n->a = std::move(value);
    n->b = std::move(test);
    return finish(std::move(n));
  }

  Result<NodePtr> binary(std::string op, NodePtr left, NodePtr right) {
    auto n = make(NodeKind::kBinary);
    n->text = std::move(op);
    n->a = std::move(left);
    n->b = std::move(right);
    return finish(std::move(n));
  }

  Result<NodePtr> parse_or() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr left, parse_and());
    while (is_identifier("or")) {
      ++current_;
      TURBINE_ASSIGN_OR_RETURN(NodePtr right, parse_and());
      TURBINE_ASSIGN_OR_RETURN(left, binary("or", std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> parse_and() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr left, parse_not());
    while (is_identifier("and")) {
      ++current_;
      TURBINE_ASSIGN_OR_RETURN(NodePtr right, parse_not());
      TURBINE_ASSIGN_OR_RETURN(left, binary("and", std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> parse_not() {
    NestingGuard guard(*this);
    TURBINE_RETURN_IF_ERROR(check_nesting());
    NodePtr result;
    // Mirrors the reference: `not a not b` keeps only the last operand.
    while (is_identifier("not")) {
      ++current_;
      auto n = make(NodeKind::kUnary);
      n->text = "not";
      TURBINE_ASSIGN_OR_RETURN(n->a, parse_not());
      TURBINE_ASSIGN_OR_RETURN(result, finish(std::move(n)));
    }
    if (result) return result;
    return parse_comparison();
  }

  Result<NodePtr> parse_comparison() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr left, parse_additive());
    while (true) {
      std::string op;
      if (is_identifier("not") && is_identifier("in", 1)) {
        op = "not in";
        current_ += 2;
      } else if (is_identifier("in")) {
        op = "in";
        ++current_;
      } else if (is(TokenType::kComparisonOperator)) {
        op = tokens_[current_++].value;
      } else {
        break;
      }
      TURBINE_ASSIGN_OR_RETURN(NodePtr right, parse_additive());
      TURBINE_ASSIGN_OR_RETURN(left, binary(op, std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> parse_additive() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr left, parse_multiplicative());
    while (is(TokenType::kAdditiveOperator)) {
      std::string op = tokens_[current_++].value;
      TURBINE_ASSIGN_OR_RETURN(NodePtr right, parse_multiplicative());
      TURBINE_ASSIGN_OR_RETURN(left, binary(op, std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> parse_multiplicative() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr left, parse_power());
    while (is(TokenType::kMultiplicativeOperator)) {
      std::string op = tokens_[current_++].value;
      TURBINE_ASSIGN_OR_RETURN(NodePtr right, parse_power());
      TURBINE_ASSIGN_OR_RETURN(left, binary(op, std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> parse_power() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr left, parse_test());
    while (is(TokenType::kExponentOperator)) {
      ++current_;
      TURBINE_ASSIGN_OR_RETURN(NodePtr right, parse_test());
      TURBINE_ASSIGN_OR_RETURN(left, binary("**", std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> parse_test() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr operand, parse_filter());
    while (is_identifier("is")) {
      ++current_;
      auto n = make(NodeKind::kTest);
      if (is_identifier("not")) {
        n->flag = true;
        ++current_;
      }
      if (!is(TokenType::kIdentifier)) return error("expected identifier for the test");
      n->text = tokens_[current_++].value;
      // Extension over the reference: `x is equalto(y)`.
      if (is(TokenType::kOpenParen)) {
        TURBINE_ASSIGN_OR_RETURN(n->list, parse_args(false));
      }
      n->a = std::move(operand);
      TURBINE_ASSIGN_OR_RETURN(operand, finish(std::move(n)));
    }
    return operand;
  }

  // `name` or `name(args)` after `|` or `{% filter`.
  Result<NodePtr> parse_filter_node() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr filter, parse_primary());
    if (filter->kind != NodeKind::kIdentifier) return error("expected identifier for the filter");
    if (is(TokenType::kOpenParen)) {
      auto call = make(NodeKind::kCall);
      call->a = std::move(filter);
      TURBINE_ASSIGN_OR_RETURN(call->list, parse_args(false));
      TURBINE_ASSIGN_OR_RETURN(filter, finish(std::move(call)));
    }
    return filter;
  }

  Result<NodePtr> parse_filter() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr operand, parse_unary_sign());
    while (is(TokenType::kPipe)) {
      ++current_;
      auto n = make(NodeKind::kFilter);
      TURBINE_ASSIGN_OR_RETURN(n->b, parse_filter_node());
      n->a = std::move(operand);
      TURBINE_ASSIGN_OR_RETURN(operand, finish(std::move(n)));
    }
    return operand;
  }

  Result<NodePtr> parse_unary_sign() {
    NestingGuard guard(*this);
    TURBINE_RETURN_IF_ERROR(check_nesting());
    const Token& t = peek();
    if ((t.type == TokenType::kUnaryOperator || t.type == TokenType::kAdditiveOperator) &&
        (t.value == "-" || t.value == "+")) {
      auto n = make(NodeKind::kUnary);
      n->text = tokens_[current_++].value;
      TURBINE_ASSIGN_OR_RETURN(n->a, parse_unary_sign());
      return finish(std::move(n));
    }
    return parse_call_member();
  }

  Result<NodePtr> parse_call_member() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr primary, parse_primary());
    TURBINE_ASSIGN_OR_RETURN(NodePtr member, parse_member(std::move(primary)));
    while (is(TokenType::kOpenParen)) {
      auto call = make(NodeKind::kCall);
      call->a = std::move(member);
      TURBINE_ASSIGN_OR_RETURN(call->list, parse_args(false));
      TURBINE_ASSIGN_OR_RETURN(NodePtr done, finish(std::move(call)));
      TURBINE_ASSIGN_OR_RETURN(member, parse_member(std::move(done)));
    }
    return member;
  }

  // `(a, b=1, *c, **d)`; `parameters` for macro declarations.
  Result<NodeList> parse_args(bool parameters) {
    TURBINE_RETURN_IF_ERROR(expect(TokenType::kOpenParen, "'('").status());
    NodeList args;
    bool saw_keyword = false;
    bool saw_spread = false;
    std::vector<std::string> names;
    while (!is(TokenType::kCloseParen)) {
      if (is(TokenType::kEnd)) return error("expected ')'");
      bool keyword_spread = is(TokenType::kExponentOperator);
      bool positional_spread = is(TokenType::kMultiplicativeOperator) && peek().value == "*";
      if (parameters && (keyword_spread || positional_spread)) {
        return error("argument unpacking is not allowed in parameter declarations");
      }
      if (keyword_spread) {
        ++current_;
        auto n = make(NodeKind::kKeywordSpread);
        TURBINE_ASSIGN_OR_RETURN(n->a, parse_expression());
        TURBINE_ASSIGN_OR_RETURN(NodePtr done, finish(std::move(n)));
        args.push_back(std::move(done));
        if (is(TokenType::kComma)) ++current_;
        if (!is(TokenType::kCloseParen)) return error("`**` must be applied to the final argument");
        break;
      }
      NodePtr arg;
      if (positional_spread) {
        if (saw_spread) return error("only one `*` argument unpacking is allowed");
        saw_spread = true;
        ++current_;
        auto n = make(NodeKind::kSpread);
        TURBINE_ASSIGN_OR_RETURN(n->a, parse_expression());
        TURBINE_ASSIGN_OR_RETURN(arg, finish(std::move(n)));
      } else {
        TURBINE_ASSIGN_OR_RETURN(arg, parse_expression());
        if (is(TokenType::kEquals)) {
          ++current_;
          if (arg->kind != NodeKind::kIdentifier)
            return error("expected identifier for keyword argument");
          auto kw = make(NodeKind::kKeywordArg);
          kw->text = arg->text;
          TURBINE_ASSIGN_OR_RETURN(kw->a, parse_expression());
          TURBINE_ASSIGN_OR_RETURN(arg, finish(std::move(kw)));
        }
        if (parameters) {
          if (arg->kind != NodeKind::kIdentifier && arg->kind != NodeKind::kKeywordArg) {
            return error("expected identifier for parameter declaration");
          }
          if (std::find(names.begin(), names.end(), arg->text) != names.end()) {
            return error("duplicate parameter name: " + arg->text);
          }
          names.push_back(arg->text);
        }
        if (arg->kind == NodeKind::kKeywordArg) {
          saw_keyword = true;
        } else if (saw_keyword) {
          return error(parameters ? "non-default argument follows default argument"
                                  : "positional arguments must come before keyword arguments");
        } else if (saw_spread) {
          return error("positional arguments must not follow `*` argument unpacking");
        }
      }
      args.push_back(std::move(arg));
      if (is(TokenType::kComma)) ++current_;
    }
    ++current_;  // )
    return args;
  }

  Result<NodePtr> parse_subscript() {
    bool is_slice = false;
    NodePtr parts[3];
    size_t count = 0;
    while (!is(TokenType::kCloseSquareBracket)) {
      if (is(TokenType::kEnd)) return error("expected ']'");
      if (count >= 3) return error("expected 0-3 arguments for slice expression");
      if (is(TokenType::kColon)) {
        ++count;
        ++current_;
        is_slice = true;
      } else {
        TURBINE_ASSIGN_OR_RETURN(parts[count], parse_expression());
        ++count;
        if (is(TokenType::kColon)) {
          ++current_;
          is_slice = true;
        }
      }
    }
    if (count == 0) return error("expected at least one argument for member/slice expression");
    if (!is_slice) return std::move(parts[0]);
    auto n = make(NodeKind::kSlice);
    n->a = std::move(parts[0]);
    n->b = std::move(parts[1]);
    n->c = std::move(parts[2]);
    return finish(std::move(n));
  }

  Result<NodePtr> parse_member(NodePtr object) {
    while (is(TokenType::kDot) || is(TokenType::kOpenSquareBracket)) {
      bool computed = is(TokenType::kOpenSquareBracket);
      ++current_;
      auto n = make(NodeKind::kMember);
      n->flag = computed;
      if (computed) {
        TURBINE_ASSIGN_OR_RETURN(n->b, parse_subscript());
        TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseSquareBracket, "']'").status());
      } else {
        TURBINE_ASSIGN_OR_RETURN(n->b, parse_primary());
        if (n->b->kind != NodeKind::kIdentifier && n->b->kind != NodeKind::kInteger) {
          return error("expected identifier or integer following '.'");
        }
      }
      n->a = std::move(object);
      TURBINE_ASSIGN_OR_RETURN(object, finish(std::move(n)));
    }
    return object;
  }

  Result<NodePtr> parse_primary() {
    if (is(TokenType::kEnd)) return error("unexpected end of template");
    const Token& t = tokens_[current_++];
    switch (t.type) {
      case TokenType::kNumericLiteral: {
        bool is_float = t.value.find('.') != std::string::npos;
        auto n = make(is_float ? NodeKind::kFloat : NodeKind::kInteger);
        n->number = std::strtod(t.value.c_str(), nullptr);
        return n;
      }
      case TokenType::kStringLiteral: {
        auto n = make(NodeKind::kString);
        n->text = t.value;
        while (is(TokenType::kStringLiteral)) n->text += tokens_[current_++].value;
        return n;
      }
      case TokenType::kIdentifier: {
        auto n = make(NodeKind::kIdentifier);
        n->text = t.value;
        return n;
      }
      case TokenType::kOpenParen: {
        TURBINE_ASSIGN_OR_RETURN(NodePtr e, parse_expression_sequence(false));
        TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseParen, "')'").status());
        return e;
      }
      case TokenType::kOpenSquareBracket: {
        auto n = make(NodeKind::kArray);
        while (!is(TokenType::kCloseSquareBracket)) {
          TURBINE_ASSIGN_OR_RETURN(NodePtr e, parse_expression());
          n->list.push_back(std::move(e));
          if (is(TokenType::kComma)) ++current_;
        }
        ++current_;
        return finish(std::move(n));
      }
      case TokenType::kOpenCurlyBracket: {
        auto n = make(NodeKind::kObjectLit);
        while (!is(TokenType::kCloseCurlyBracket)) {
          TURBINE_ASSIGN_OR_RETURN(NodePtr key, parse_expression());
          TURBINE_RETURN_IF_ERROR(expect(TokenType::kColon, "':' in object literal").status());
          TURBINE_ASSIGN_OR_RETURN(NodePtr value, parse_expression());
          n->pairs.emplace_back(std::move(key), std::move(value));
          if (is(TokenType::kComma)) ++current_;
        }
        ++current_;
        return finish(std::move(n));
      }
      default: --current_; return error(std::string("unexpected ") + type_name(t.type));
    }
  }

  std::vector<Token> tokens_;
  const std::string& src_;
  const ParseLimits& limits_;
  size_t current_ = 0;
  int nesting_ = 0;
};

}  // namespace

Result<std::unique_ptr<Program>> parse_template(std::string_view source,
                                                const ParseLimits& limits) {
  std::string src = preprocess_template(source);
  TURBINE_ASSIGN_OR_RETURN(std::vector<Token> tokens, lex_template(src));
  Parser parser(std::move(tokens), src, limits);
  return parser.run();
}

}  // namespace turbine::chat

// Syntax tree of a parsed chat template. Built once by the parser, then only read (renders on
// several threads share one tree).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace turbine::chat {

enum class NodeKind {
  // statements
  kText,  // literal text between tags (text)
  kComment,
  kIf,     // a: test, body, alternate
  kFor,    // a: loop target (identifier or tuple), b: iterable, body, alternate (else)
  kSet,    // a: target, b: value (null: block set, body)
  kMacro,  // text: name, list: parameters, body
  kBreak,
  kContinue,
  kFilterBlock,  // a: filter (identifier or call), body
  // expressions
  kInteger,        // number
  kFloat,          // number
  kString,         // text
  kArray,          // list
  kTuple,          // list
  kObjectLit,      // pairs
  kIdentifier,     // text
  kMember,         // a: object, b: property; flag: computed ([...])
  kCall,           // a: callee, list: arguments
  kUnary,          // text: operator, a: operand
  kBinary,         // text: operator, a, b
  kFilter,         // a: operand, b: filter (identifier or call)
  kTest,           // a: operand, text: test name, flag: negated, list: arguments
  kSelect,         // a: value, b: condition (`a if c` without else)
  kTernary,        // a: condition, b: if true, c: if false
  kSlice,          // a, b, c: start, stop, step (each may be null)
  kKeywordArg,     // text: name, a: value
  kSpread,         // a: value (*args)
  kKeywordSpread,  // a: value (**kwargs)
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using NodeList = std::vector<NodePtr>;

struct Node {
  explicit Node(NodeKind k) : kind(k) {}
  NodeKind kind;
  std::string text;
  double number = 0;
  bool flag = false;
  NodePtr a, b, c;
  NodeList list;
  NodeList body;
  NodeList alternate;
  std::vector<std::pair<NodePtr, NodePtr>> pairs;
  // Macros: whether the body reads the special `varargs` / `kwargs` names.
  bool uses_varargs = false;
  bool uses_kwargs = false;
  // Height of the expression tree below (and including) this node; bounded by the parser so
  // that evaluating and destroying the tree cannot exhaust the stack.
  int depth = 1;
};

struct Program {
  NodeList body;
};

}  // namespace turbine::chat

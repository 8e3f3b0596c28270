#include "chat/template_eval.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace turbine::chat {

const char* value_type_name(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined: return "UndefinedValue";
    case ValueKind::kNull: return "NullValue";
    case ValueKind::kBool: return "BooleanValue";
    case ValueKind::kInteger: return "IntegerValue";
    case ValueKind::kFloat: return "FloatValue";
    case ValueKind::kString: return "StringValue";
    case ValueKind::kArray: return "ArrayValue";
    case ValueKind::kTuple: return "TupleValue";
    case ValueKind::kObject: return "ObjectValue";
    case ValueKind::kKwargs: return "KeywordArgumentsValue";
    case ValueKind::kNamespace: return "NamespaceValue";
    case ValueKind::kFunction: return "FunctionValue";
  }
  return "Value";
}

namespace {

// The reference's slice(): Python slicing on an array of `n` items; calls `take(i)` in order.
template <typename Take>
void slice_indices(size_t n, const Value& start_v, const Value& stop_v, const Value& step_v,
                   Take take) {
  const double len = static_cast<double>(n);
  const double step = step_v.is_undefined() ? 1 : step_v.number();
  const int direction = step > 0 ? 1 : step < 0 ? -1 : 0;
  double start, stop;
  if (direction >= 0) {
    start = start_v.is_undefined() ? 0 : start_v.number();
    start = start < 0 ? std::max(len + start, 0.0) : std::min(start, len);
    stop = stop_v.is_undefined() ? len : stop_v.number();
    stop = stop < 0 ? std::max(len + stop, 0.0) : std::min(stop, len);
  } else {
    start = start_v.is_undefined() ? len - 1 : start_v.number();
    start = start < 0 ? std::max(len + start, -1.0) : std::min(start, len - 1);
    stop = stop_v.is_undefined() ? -1 : stop_v.number();
    stop = stop < -1 ? std::max(len + stop, -1.0) : std::min(stop, len - 1);
  }
  if (direction == 0) return;
  for (double i = start; direction * i < direction * stop; i += step) {
    if (i >= 0 && i < len) take(static_cast<size_t>(i));
  }
}

}  // namespace

// ---- Env --------------------------------------------------------------------------------------

const Value* Env::lookup(std::string_view name) const {
  for (const Env* e = this; e != nullptr; e = e->parent_) {
    auto it = e->vars_.find(name);
    if (it != e->vars_.end()) return &it->second;
  }
  return nullptr;
}

// ---- Interpreter: plumbing ----------------------------------------------------------------------

Interpreter::~Interpreter() {
  for (Value& ns : namespaces_) ns.mutable_object().clear();
}

Status Interpreter::error(const std::string& msg) const {
  return invalid_argument("chat template error: " + msg);
}

Status Interpreter::step() {
  if (++steps_ > limits_.max_steps) {
    return error("template exceeded " + std::to_string(limits_.max_steps) + " evaluation steps");
  }
  return Status::ok();
}

Status Interpreter::charge_iterations(size_t n) {
  iterations_ += n;
  if (iterations_ > limits_.max_loop_iterations) {
    return error("template exceeded " + std::to_string(limits_.max_loop_iterations) +
                 " loop iterations");
  }
  return Status::ok();
}

Result<Value> Interpreter::make_string(std::string s) {
  if (s.size() > limits_.max_output_bytes) {
    return error("string of " + std::to_string(s.size()) + " bytes exceeds the limit of " +
                 std::to_string(limits_.max_output_bytes) + " bytes");
  }
  string_work_ += s.size();
  if (string_work_ > limits_.max_string_work_bytes) {
    return error("template built more than " + std::to_string(limits_.max_string_work_bytes) +
                 " bytes of strings");
  }
  return Value::string(std::move(s));
}

Value Interpreter::new_namespace(Object entries) {
  Value ns = Value::name_space(std::move(entries));
  namespaces_.push_back(ns);
  return ns;
}

Result<std::string> Interpreter::display(const Value& v) {
  if (v.is_array_like() || v.is_attribute_container()) {
    JsonOptions o;
    o.undefined_as_null = false;
    return to_json_string(v, o);
  }
  return to_display_string(v);
}

Status Interpreter::append_output(std::string& out, std::string_view text) {
  if (out.size() + text.size() > limits_.max_output_bytes) {
    return error("rendered output exceeds the limit of " +
                 std::to_string(limits_.max_output_bytes) + " bytes");
  }
  out.append(text);
  return Status::ok();
}

Result<std::string> Interpreter::render(const Program& program, Env& globals) {
  std::string out;
  TURBINE_RETURN_IF_ERROR(exec_block(program.body, globals, out));
  if (control_ != Control::kNone) return error("'break' or 'continue' outside of a loop");
  return out;
}

// ---- statements ---------------------------------------------------------------------------------

Status Interpreter::exec_block(const NodeList& nodes, Env& env, std::string& out) {
  for (const NodePtr& n : nodes) {
    TURBINE_RETURN_IF_ERROR(exec(*n, env, out));
    if (control_ != Control::kNone) return Status::ok();
  }
  return Status::ok();
}

Status Interpreter::exec(const Node& node, Env& env, std::string& out) {
  TURBINE_RETURN_IF_ERROR(step());
  switch (node.kind) {
    case NodeKind::kText: return append_output(out, node.text);
    case NodeKind::kComment: return Status::ok();
    case NodeKind::kIf: {
      TURBINE_ASSIGN_OR_RETURN(Value test, eval(*node.a, env));
      return exec_block(test.truthy() ? node.body : node.alternate, env, out);
    }
    case NodeKind::kFor: return exec_for(node, env, out);
    case NodeKind::kSet: return exec_set(node, env);
    case NodeKind::kMacro: {
      const Node* macro = &node;
      env.set(node.text, Value::function(node.text, [macro](Interpreter& in, Env& caller,
                                                            std::vector<Value>& args) {
                return in.call_macro(*macro, args, caller);
              }));
      return Status::ok();
    }
    case NodeKind::kBreak: control_ = Control::kBreak; return Status::ok();
    case NodeKind::kContinue: control_ = Control::kContinue; return Status::ok();
    case NodeKind::kFilterBlock: {
      std::string body;
      TURBINE_RETURN_IF_ERROR(exec_block(node.body, env, body));
      if (control_ != Control::kNone) return Status::ok();
      TURBINE_ASSIGN_OR_RETURN(Value text, make_string(std::move(body)));
      TURBINE_ASSIGN_OR_RETURN(Value filtered, apply_filter(text, *node.a, env));
      if (filtered.is_null() || filtered.is_undefined()) return Status::ok();
      TURBINE_ASSIGN_OR_RETURN(std::string text_out, display(filtered));
      return append_output(out, text_out);
    }
    default: {
      TURBINE_ASSIGN_OR_RETURN(Value v, eval(node, env));
      if (v.is_null() || v.is_undefined()) return Status::ok();
      if (v.is_string()) return append_output(out, v.str());
      TURBINE_ASSIGN_OR_RETURN(std::string text_out, display(v));
      return append_output(out, text_out);
    }
  }
}

Status Interpreter::exec_for(const Node& node, Env& env, std::string& out) {
  Env scope(&env);
  const Node* iterable_node = node.b.get();
  const Node* test = nullptr;
  if (iterable_node->kind == NodeKind::kSelect) {
    test = iterable_node->b.get();
    iterable_node = iterable_node->a.get();
  }
  TURBINE_ASSIGN_OR_RETURN(Value iterable, eval(*iterable_node, scope));
  if (iterable.is_object_like()) {
    Array keys;
    for (const auto& [k, v] : iterable.object().entries()) keys.push_back(Value::string(k));
    iterable = Value::array(std::move(keys));
  } else if (!iterable.is_array_like()) {
    return error(std::string("expected iterable or object type in for loop: got ") +
                 value_type_name(iterable));
  }
  const Node& target = *node.a;
  auto bind = [&](Env& where, const Value& current) -> Status {
    if (target.kind == NodeKind::kIdentifier) {
      where.set(target.text, current);
      return Status::ok();
    }
    if (!current.is(ValueKind::kArray)) {
      return error(std::string("cannot unpack non-iterable type: ") + value_type_name(current));
    }
    const Array& parts = current.array();
    if (parts.size() != target.list.size()) {
      return error(std::string("too ") + (target.list.size() > parts.size() ? "few" : "many") +
                   " items to unpack");
    }
    for (size_t j = 0; j < parts.size(); ++j) {
      if (target.list[j]->kind != NodeKind::kIdentifier) {
        return error("cannot unpack to a non-identifier");
      }
      where.set(target.list[j]->text, parts[j]);
    }
    return Status::ok();
  };

  const Array& all = iterable.array();
  TURBINE_RETURN_IF_ERROR(charge_iterations(all.size()));
  Array items;
  items.reserve(all.size());
  for (const Value& current : all) {
    if (test != nullptr) {
      Env test_scope(&scope);
      TURBINE_RETURN_IF_ERROR(bind(test_scope, current));
      TURBINE_ASSIGN_OR_RETURN(Value keep, eval(*test, test_scope));
      if (!keep.truthy()) continue;
    } else if (target.kind != NodeKind::kIdentifier) {
      // The reference checks unpacking while collecting the items.
      Env probe(&scope);
      TURBINE_RETURN_IF_ERROR(bind(probe, current));
    }
    items.push_back(current);
  }

  bool no_iteration = true;
  const size_t n = items.size();
  std::string iteration;
  for (size_t i = 0; i < n; ++i) {
    TURBINE_RETURN_IF_ERROR(step());
    Object loop;
    loop.set("index", Value::integer(static_cast<double>(i + 1)));
    loop.set("index0", Value::integer(static_cast<double>(i)));
    loop.set("revindex", Value::integer(static_cast<double>(n - i)));
    loop.set("revindex0", Value::integer(static_cast<double>(n - i - 1)));
    loop.set("first", Value::boolean(i == 0));
    loop.set("last", Value::boolean(i == n - 1));
    loop.set("length", Value::integer(static_cast<double>(n)));
    loop.set("previtem", i > 0 ? items[i - 1] : Value::undefined());
    loop.set("nextitem", i + 1 < n ? items[i + 1] : Value::undefined());
    scope.set("loop", Value::object(std::move(loop)));
    TURBINE_RETURN_IF_ERROR(bind(scope, items[i]));
    iteration.clear();
    TURBINE_RETURN_IF_ERROR(exec_block(node.body, scope, iteration));
    // Like the reference, an iteration cut short by break/continue contributes no output.
    if (control_ == Control::kContinue) {
      control_ = Control::kNone;
      continue;
    }
    if (control_ == Control::kBreak) {
      control_ = Control::kNone;
      break;
    }
    TURBINE_RETURN_IF_ERROR(append_output(out, iteration));
    no_iteration = false;
  }
  if (no_iteration) return exec_block(node.alternate, scope, out);
  return Status::ok();
}

Status Interpreter::exec_set(const Node& node, Env& env) {
  Value rhs;
  if (node.b) {
    TURBINE_ASSIGN_OR_RETURN(rhs, eval(*node.b, env));
  } else {
    std::string body;
    TURBINE_RETURN_IF_ERROR(exec_block(node.body, env, body));
    TURBINE_ASSIGN_OR_RETURN(rhs, make_string(std::move(body)));
  }
  const Node& target = *node.a;
  switch (target.kind) {
    case NodeKind::kIdentifier: env.set(target.text, std::move(rhs)); return Status::ok();
    case NodeKind::kTuple: {
      if (!rhs.is_array_like()) {
        return error(std::string("cannot unpack non-iterable type in set: ") +
                     value_type_name(rhs));
      }
      const Array& parts = rhs.array();
      if (parts.size() != target.list.size()) {
        return error(std::string("too ") + (target.list.size() > parts.size() ? "few" : "many") +
                     " items to unpack in set");
      }
      for (size_t i = 0; i < parts.size(); ++i) {
        if (target.list[i]->kind != NodeKind::kIdentifier) {
          return error("cannot unpack to a non-identifier in set");
        }
        env.set(target.list[i]->text, parts[i]);
      }
      return Status::ok();
    }
    case NodeKind::kMember: {
      TURBINE_ASSIGN_OR_RETURN(Value object, eval(*target.a, env));
      if (!object.is(ValueKind::kNamespace)) {
        return error("cannot assign attribute on non-namespace object");
      }
      if (target.flag || target.b->kind != NodeKind::kIdentifier) {
        return error("cannot assign to member with non-identifier property");
      }
      object.mutable_object().set(target.b->text, std::move(rhs));
      return Status::ok();
    }
    default: return error("invalid left-hand side of assignment");
  }
}

// ---- expressions --------------------------------------------------------------------------------

Result<Value> Interpreter::eval(const Node& node, Env& env) {
  TURBINE_RETURN_IF_ERROR(step());
  switch (node.kind) {
    case NodeKind::kInteger: return Value::integer(node.number);
    case NodeKind::kFloat: return Value::floating(node.number);
    case NodeKind::kString:
    case NodeKind::kText: return Value::string(node.text);
    case NodeKind::kArray:
    case NodeKind::kTuple: {
      Array items;
      items.reserve(node.list.size());
      for (const NodePtr& e : node.list) {
        TURBINE_ASSIGN_OR_RETURN(Value v, eval(*e, env));
        items.push_back(std::move(v));
      }
      return node.kind == NodeKind::kArray ? Value::array(std::move(items))
                                           : Value::tuple(std::move(items));
    }
    case NodeKind::kObjectLit: {
      Object obj;
      for (const auto& [k, v] : node.pairs) {
        TURBINE_ASSIGN_OR_RETURN(Value key, eval(*k, env));
        if (!key.is_string()) {
          return error(std::string("object keys must be strings: got ") + value_type_name(key));
        }
        TURBINE_ASSIGN_OR_RETURN(Value value, eval(*v, env));
        obj.set(key.str(), std::move(value));
      }
      return Value::object(std::move(obj));
    }
    case NodeKind::kIdentifier: {
      const Value* v = env.lookup(node.text);
      return v ? *v : Value::undefined();
    }
    case NodeKind::kCall: return eval_call(node, env);
    case NodeKind::kMember: return eval_member(node, env);
    case NodeKind::kUnary: {
      TURBINE_ASSIGN_OR_RETURN(Value arg, eval(*node.a, env));
      if (node.text == "not") return Value::boolean(!arg.truthy());
      double sign = node.text == "-" ? -1 : 1;
      if (arg.is_number()) {
        double r = sign * arg.number();
        return arg.is(ValueKind::kFloat) ? Value::floating(r) : Value::integer(r);
      }
      if (arg.is(ValueKind::kBool)) return Value::integer(sign * (arg.as_bool() ? 1 : 0));
      return error("unknown operator \"" + node.text + "\" for " + value_type_name(arg));
    }
    case NodeKind::kBinary: return eval_binary(node, env);
    case NodeKind::kFilter: {
      TURBINE_ASSIGN_OR_RETURN(Value operand, eval(*node.a, env));
      return apply_filter(operand, *node.b, env);
    }
    case NodeKind::kTest: return eval_test(node, env);
    case NodeKind::kSelect: {
      TURBINE_ASSIGN_OR_RETURN(Value cond, eval(*node.b, env));
      if (!cond.truthy()) return Value::undefined();
      return eval(*node.a, env);
    }
    case NodeKind::kTernary: {
      TURBINE_ASSIGN_OR_RETURN(Value cond, eval(*node.a, env));
      return eval(cond.truthy() ? *node.b : *node.c, env);
    }
    default: return error("unexpected syntax in expression");
  }
}

Result<Value> Interpreter::eval_binary(const Node& node, Env& env) {
  const std::string& op = node.text;
  TURBINE_ASSIGN_OR_RETURN(Value left, eval(*node.a, env));
  if (op == "and") return left.truthy() ? eval(*node.b, env) : Result<Value>(left);
  if (op == "or") return left.truthy() ? Result<Value>(left) : eval(*node.b, env);
  TURBINE_ASSIGN_OR_RETURN(Value right, eval(*node.b, env));
  if (op == "==") return Value::boolean(js_loose_equals(left, right));
  if (op == "!=") return Value::boolean(!js_loose_equals(left, right));
  const bool membership = op == "in" || op == "not in";
  if (left.is_undefined() || right.is_undefined()) {
    if (right.is_undefined() && membership) return Value::boolean(op == "not in");
    return error("cannot perform operation " + op + " on undefined values");
  }
  if (left.is_null() || right.is_null()) return error("cannot perform operation on null values");
  auto numeric_like = [](const Value& v) { return v.is_number() || v.is(ValueKind::kBool); };
  auto numeric_value = [](const Value& v) {
    return v.is(ValueKind::kBool) ? (v.as_bool() ? 1.0 : 0.0) : v.number();
  };
  if (op == "~") return make_string(to_raw_string(left) + to_raw_string(right));
  if (op == "**" && numeric_like(left) && numeric_like(right)) {
    double a = numeric_value(left), b = numeric_value(right);
    if (a == 0 && b < 0) return error("0.0 cannot be raised to a negative power");
    double r = std::pow(a, b);
    if (!std::isfinite(r)) return error("exponentiation result is not a finite real number");
    bool is_float = left.is(ValueKind::kFloat) || right.is(ValueKind::kFloat) || b < 0;
    return is_float ? Value::floating(r) : Value::integer(r);
  }
  if (left.is_number() && right.is_number()) {
    const double a = left.number(), b = right.number();
    const bool is_float = left.is(ValueKind::kFloat) || right.is(ValueKind::kFloat);
    auto num = [&](double r) { return is_float ? Value::floating(r) : Value::integer(r); };
    if (op == "+") return num(a + b);
    if (op == "-") return num(a - b);
    if (op == "*") return num(a * b);
    if (op == "/") return Value::floating(a / b);
    if (op == "//") return num(std::floor(a / b));
    if (op == "%") return num(std::fmod(a, b));
    if (op == "<") return Value::boolean(a < b);
    if (op == ">") return Value::boolean(a > b);
    if (op == ">=") return Value::boolean(a >= b);
    if (op == "<=") return Value::boolean(a <= b);
  } else if (left.is_array_like() && right.is_array_like()) {
    if (op == "+") {
      if (left.array().size() + right.array().size() > limits_.max_loop_iterations) {
        return error("list concatenation exceeds " + std::to_string(limits_.max_loop_iterations) +
                     " items");
      }
      Array joined = left.array();
      joined.insert(joined.end(), right.array().begin(), right.array().end());
      return Value::array(std::move(joined));
    }
  } else if (right.is_array_like() && membership) {
    const Array& items = right.array();
    bool member = std::any_of(items.begin(), items.end(),
                              [&](const Value& x) { return js_strict_equals(x, left); });
    return Value::boolean(member == (op == "in"));
  }
  if ((left.is_string() || right.is_string()) && op == "+") {
    return make_string(to_raw_string(left) + to_raw_string(right));
  }
  if (left.is_string() && right.is_string() && membership) {
    bool found = right.str().find(left.str()) != std::string::npos;
    return Value::boolean(found == (op == "in"));
  }
  if (left.is_string() && right.is_object_like() && membership) {
    bool found = right.object().find(left.str()) != nullptr;
    return Value::boolean(found == (op == "in"));
  }
  return error("unknown operator \"" + op + "\" between " + value_type_name(left) + " and " +
               value_type_name(right));
}

Result<Value> Interpreter::eval_member(const Node& node, Env& env) {
  TURBINE_ASSIGN_OR_RETURN(Value object, eval(*node.a, env));
  Value property;
  if (node.flag) {
    if (node.b->kind == NodeKind::kSlice) return eval_slice(object, *node.b, env);
    TURBINE_ASSIGN_OR_RETURN(property, eval(*node.b, env));
  } else if (node.b->kind == NodeKind::kInteger) {
    property = Value::integer(node.b->number);
  } else {
    property = Value::string(node.b->text);
  }
  if (object.is_attribute_container()) {
    if (!property.is_string()) {
      return error(std::string("cannot access property with non-string: got ") +
                   value_type_name(property));
    }
    if (const Value* v = object.object().find(property.str())) return *v;
    if (object.is_object_like()) return object_method(object, property.str());
    return Value::undefined();
  }
  if (object.is_array_like() || object.is_string()) {
    if (property.is(ValueKind::kInteger)) {
      double index = std::trunc(property.number());
      if (object.is_string()) {
        std::vector<std::string> chars = split_code_points(object.str());
        double n = static_cast<double>(chars.size());
        if (index < 0) index += n;
        if (index < 0 || index >= n) return Value::undefined();
        return Value::string(chars[static_cast<size_t>(index)]);
      }
      const Array& items = object.array();
      double n = static_cast<double>(items.size());
      if (index < 0) index += n;
      if (index < 0 || index >= n) return Value::undefined();
      return items[static_cast<size_t>(index)];
    }
    if (property.is_string()) {
      if (object.is_string()) return string_method(object, property.str());
      if (property.str() == "length") {
        return Value::integer(static_cast<double>(object.array().size()));
      }
      return Value::undefined();
    }
    return error(std::string("cannot access property with non-string/non-number: got ") +
                 value_type_name(property));
  }
  if (!property.is_string()) {
    return error(std::string("cannot access property with non-string: got ") +
                 value_type_name(property));
  }
  return Value::undefined();
}

Result<Value> Interpreter::eval_slice(const Value& object, const Node& slice, Env& env) {
  if (!object.is_array_like() && !object.is_string()) {
    return error("slice object must be an array or string");
  }
  Value bounds[3];
  const Node* parts[3] = {slice.a.get(), slice.b.get(), slice.c.get()};
  const char* names[3] = {"start", "stop", "step"};
  for (int i = 0; i < 3; ++i) {
    if (parts[i] == nullptr) continue;
    TURBINE_ASSIGN_OR_RETURN(bounds[i], eval(*parts[i], env));
    if (!bounds[i].is(ValueKind::kInteger) && !bounds[i].is_undefined()) {
      return error(std::string("slice ") + names[i] + " must be numeric or undefined");
    }
  }
  if (object.is_array_like()) {
    const Array& items = object.array();
    Array out;
    slice_indices(items.size(), bounds[0], bounds[1], bounds[2],
                  [&](size_t i) { out.push_back(items[i]); });
    return Value::array(std::move(out));
  }
  std::vector<std::string> chars = split_code_points(object.str());
  std::string out;
  slice_indices(chars.size(), bounds[0], bounds[1], bounds[2], [&](size_t i) { out += chars[i]; });
  return make_string(std::move(out));
}

Status Interpreter::eval_arguments(const NodeList& args, Env& env, std::vector<Value>& positional,
                                   Object& keywords) {
  for (const NodePtr& arg : args) {
    if (arg->kind == NodeKind::kSpread) {
      TURBINE_ASSIGN_OR_RETURN(Value v, eval(*arg->a, env));
      if (!v.is_array_like()) {
        return error(std::string("cannot unpack non-iterable type: ") + value_type_name(v));
      }
      positional.insert(positional.end(), v.array().begin(), v.array().end());
    } else if (arg->kind != NodeKind::kKeywordArg && arg->kind != NodeKind::kKeywordSpread) {
      TURBINE_ASSIGN_OR_RETURN(Value v, eval(*arg, env));
      positional.push_back(std::move(v));
    }
  }
  for (const NodePtr& arg : args) {
    if (arg->kind == NodeKind::kKeywordArg) {
      if (keywords.find(arg->text)) {
        return error("got multiple values for keyword argument '" + arg->text + "'");
      }
      TURBINE_ASSIGN_OR_RETURN(Value v, eval(*arg->a, env));
      keywords.set(arg->text, std::move(v));
    } else if (arg->kind == NodeKind::kKeywordSpread) {
      TURBINE_ASSIGN_OR_RETURN(Value v, eval(*arg->a, env));
      if (!v.is_object_like()) {
        return error(std::string("argument after ** must be a mapping, not ") + value_type_name(v));
      }
      for (const auto& [k, val] : v.object().entries()) {
        if (keywords.find(k)) return error("got multiple values for keyword argument '" + k + "'");
        keywords.set(k, val);
      }
    }
  }
  return Status::ok();
}

Result<Value> Interpreter::eval_call(const Node& node, Env& env) {
  std::vector<Value> args;
  Object keywords;
  TURBINE_RETURN_IF_ERROR(eval_arguments(node.list, env, args, keywords));
  if (keywords.size() > 0) args.push_back(Value::kwargs(std::move(keywords)));
  TURBINE_ASSIGN_OR_RETURN(Value fn, eval(*node.a, env));
  if (!fn.is(ValueKind::kFunction)) {
    return error(std::string("cannot call something that is not a function: got ") +
                 value_type_name(fn));
  }
  return call_function(fn, args, env);
}

Result<Value> Interpreter::call_function(const Value& fn, std::vector<Value>& args, Env& env) {
  if (call_depth_ >= limits_.max_call_depth) {
    return error("calls nested deeper than " + std::to_string(limits_.max_call_depth) + " levels");
  }
  ++call_depth_;
  Result<Value> r = fn.function()(*this, env, args);
  --call_depth_;
  return r;
}

Result<Value> Interpreter::call_macro(const Node& macro, std::vector<Value>& args, Env& caller) {
  // Like the reference, the macro body sees the caller's scope.
  Env scope(&caller);
  std::vector<Value> positional = args;
  Object keywords;
  if (!positional.empty() && positional.back().is(ValueKind::kKwargs)) {
    keywords = positional.back().object();
    positional.pop_back();
  }
  std::unordered_set<std::string> used;
  std::vector<std::pair<std::string, const Node*>> pending_defaults;
  for (size_t i = 0; i < macro.list.size(); ++i) {
    const Node& param = *macro.list[i];
    const std::string& name = param.text;
    const Node* default_value = param.kind == NodeKind::kKeywordArg ? param.a.get() : nullptr;
    Value value;
    bool given = false;
    if (i < positional.size()) {
      value = positional[i];
      given = true;
    } else if (const Value* kw = keywords.find(name)) {
      value = *kw;
      used.insert(name);
      given = true;
    }
    if (!given && default_value != nullptr) pending_defaults.emplace_back(name, default_value);
    scope.set(name, value);
  }
  Object rest;
  for (const auto& [k, v] : keywords.entries()) {
    if (!used.count(k)) rest.set(k, v);
  }
  if (macro.uses_kwargs) {
    scope.set("kwargs", Value::object(std::move(rest)));
  } else if (rest.size() > 0) {
    return error("macro '" + macro.text + "' takes no keyword argument '" +
                 rest.entries()[0].first + "'");
  }
  if (macro.uses_varargs) {
    Array extra;
    for (size_t i = macro.list.size(); i < positional.size(); ++i) extra.push_back(positional[i]);
    scope.set("varargs", Value::array(std::move(extra)));
  } else if (positional.size() > macro.list.size()) {
    return error("macro '" + macro.text + "' takes not more than " +
                 std::to_string(macro.list.size()) + " argument(s)");
  }
  for (const auto& [name, node] : pending_defaults) {
    TURBINE_ASSIGN_OR_RETURN(Value v, eval(*node, scope));
    scope.set(name, std::move(v));
  }
  std::string out;
  TURBINE_RETURN_IF_ERROR(exec_block(macro.body, scope, out));
  if (control_ != Control::kNone) return error("'break' or 'continue' outside of a loop");
  return make_string(std::move(out));
}

Result<Value> Interpreter::eval_test(const Node& node, Env& env) {
  TURBINE_ASSIGN_OR_RETURN(Value operand, eval(*node.a, env));
  Value argument;
  bool has_argument = false;
  if (!node.list.empty()) {
    TURBINE_ASSIGN_OR_RETURN(argument, eval(*node.list[0], env));
    has_argument = true;
  }
  TURBINE_ASSIGN_OR_RETURN(bool r,
                           run_test(node.text, operand, has_argument ? &argument : nullptr));
  return Value::boolean(node.flag ? !r : r);
}

}  // namespace turbine::chat

// Tree-walking evaluator for parsed chat templates.
//
// One Interpreter per render, used by one thread; the Program it walks is shared and read-only.
// Every failure (template errors, raise_exception, limits) comes back as a kInvalidArgument
// Status; nothing throws.
#pragma once

#include <cstddef>
#include <ctime>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "chat/template_ast.h"
#include "chat/value.h"
#include "common/status.h"

namespace turbine::chat {

// The value's type as @huggingface/jinja names it in error messages ("StringValue", ...).
const char* value_type_name(const Value& v);

struct RenderLimits {
  size_t max_output_bytes = 8u << 20;         // the rendered prompt and any string built on the way
  size_t max_loop_iterations = 1'000'000;     // all loops of one render together (and range())
  size_t max_call_depth = 32;                 // nested macro calls
  size_t max_steps = 20'000'000;              // evaluated nodes per render
  size_t max_string_work_bytes = 256u << 20;  // bytes of strings built per render
};

// A scope of variables. Scopes live on the evaluator's stack; values never point at them.
class Env {
 public:
  explicit Env(Env* parent) : parent_(parent) {}
  const Value* lookup(std::string_view name) const;
  void set(const std::string& name, Value value) { vars_[name] = std::move(value); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  Env* parent_;
  std::unordered_map<std::string, Value, Hash, std::equal_to<>> vars_;
};

class Interpreter {
 public:
  // `local_time` gives the wall-clock time for strftime_now (injected by tests).
  Interpreter(const RenderLimits& limits, std::function<std::tm()> local_time)
      : limits_(limits), local_time_(std::move(local_time)) {}
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Adds raise_exception, range, strftime_now, namespace, true/false/none to `globals`.
  void install_globals(Env& globals);
  Result<std::string> render(const Program& program, Env& globals);

  // Helpers for native functions.
  Status error(const std::string& msg) const;
  Result<Value> make_string(std::string s);
  Status charge_iterations(size_t n);
  const std::function<std::tm()>& local_time() const { return local_time_; }
  Value new_namespace(Object entries);
  const RenderLimits& limits() const { return limits_; }

 private:
  enum class Control { kNone, kBreak, kContinue };

  Status exec_block(const NodeList& nodes, Env& env, std::string& out);
  Status exec(const Node& node, Env& env, std::string& out);
  Status exec_for(const Node& node, Env& env, std::string& out);
  Status exec_set(const Node& node, Env& env);
  Status append_output(std::string& out, std::string_view text);
  // How `{{ v }}` prints; containers the reference cannot serialize are errors.
  Result<std::string> display(const Value& v);

  Result<Value> eval(const Node& node, Env& env);
  Result<Value> eval_binary(const Node& node, Env& env);
  Result<Value> eval_member(const Node& node, Env& env);
  Result<Value> eval_slice(const Value& object, const Node& slice, Env& env);
  Result<Value> eval_call(const Node& node, Env& env);
  Result<Value> eval_test(const Node& node, Env& env);
  Status eval_arguments(const NodeList& args, Env& env, std::vector<Value>& positional,
                        Object& keywords);
  Result<Value> apply_filter(const Value& operand, const Node& filter, Env& env);
  Result<Value> apply_simple_filter(const Value& operand, const std::string& name, Env& env);
  Result<Value> apply_call_filter(const Value& operand, const Node& call, Env& env);
  Result<bool> run_test(const std::string& name, const Value& operand, const Value* argument);
  Result<Value> call_function(const Value& fn, std::vector<Value>& args, Env& env);
  Result<Value> call_macro(const Node& macro, std::vector<Value>& args, Env& caller);
  Result<Value> string_method(const Value& s, const std::string& name);
  Result<Value> object_method(const Value& o, const std::string& name);
  Result<Value> sort_values(const Array& items, bool reverse, bool case_sensitive,
                            const Value* attribute);
  Status step();

  const RenderLimits& limits_;
  std::function<std::tm()> local_time_;
  Control control_ = Control::kNone;
  size_t steps_ = 0;
  size_t iterations_ = 0;
  size_t call_depth_ = 0;
  size_t string_work_ = 0;
  // Namespaces can be made to contain themselves; their maps are cleared when the render ends so
  // that such cycles do not leak.
  std::vector<Value> namespaces_;
};

}  // namespace turbine::chat

// Runtime values of the chat-template interpreter.
//
// The semantics follow @huggingface/jinja (what transformers.js renders with), because chat
// templates are checked byte-for-byte against it: numbers are doubles with an integer/float tag
// (JavaScript numbers), strings are UTF-8, objects keep insertion order, and arrays/objects have
// reference identity (`==` on two distinct arrays is false, as in JavaScript).
//
// Values are immutable once built, except namespaces (`namespace(...)` objects), which templates
// assign attributes on. Everything here is created and used by one render on one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turbine::chat {

enum class ValueKind {
  kUndefined,
  kNull,
  kBool,
  kInteger,
  kFloat,
  kString,
  kArray,
  kTuple,
  kObject,
  kKwargs,     // keyword arguments passed to a call; an object otherwise
  kNamespace,  // namespace(...): the only mutable value
  kFunction,
};

class Value;
class Interpreter;
class Env;

using Array = std::vector<Value>;

class Object;

// A callable: a global (range, namespace, ...), a bound method ("abc".upper) or a macro.
// `args` holds the positional arguments, then one kKwargs value if keywords were given.
using NativeFunction = std::function<Result<Value>(Interpreter&, Env&, std::vector<Value>& args)>;

class Value {
 public:
  Value() = default;  // undefined

  static Value undefined() { return {}; }
  static Value null();
  static Value boolean(bool b);
  static Value integer(double v);
  static Value floating(double v);
  static Value string(std::string s);
  static Value string(std::shared_ptr<const std::string> s);
  static Value array(Array items);
  static Value tuple(Array items);
  static Value object(Object obj);
  static Value kwargs(Object obj);
  static Value name_space(Object obj);
  static Value function(std::string name, NativeFunction fn);

  ValueKind kind() const { return kind_; }
  bool is(ValueKind k) const { return kind_ == k; }
  bool is_undefined() const { return kind_ == ValueKind::kUndefined; }
  bool is_null() const { return kind_ == ValueKind::kNull; }
  bool is_number() const { return kind_ == ValueKind::kInteger || kind_ == ValueKind::kFloat; }
  bool is_string() const { return kind_ == ValueKind::kString; }
  // ArrayValue in the reference (tuples included).
  bool is_array_like() const { return kind_ == ValueKind::kArray || kind_ == ValueKind::kTuple; }
  // ObjectValue in the reference (keyword-argument bags included; namespaces not).
  bool is_object_like() const { return kind_ == ValueKind::kObject || kind_ == ValueKind::kKwargs; }
  // Objects and namespaces: what attribute lookups and `map(attribute=...)` read.
  bool is_attribute_container() const { return is_object_like() || kind_ == ValueKind::kNamespace; }

  bool as_bool() const { return bool_; }
  double number() const { return number_; }
  const std::string& str() const;
  const std::shared_ptr<const std::string>& str_ptr() const { return str_; }
  const Array& array() const;
  const Object& object() const;
  Object& mutable_object() const;  // namespaces only
  const std::string& function_name() const;
  const NativeFunction& function() const;

  // Identity of the heap part (arrays, objects, functions): JavaScript reference equality.
  const void* identity() const;

  // Python/Jinja truthiness as the reference computes it.
  bool truthy() const;

 private:
  ValueKind kind_ = ValueKind::kUndefined;
  bool bool_ = false;
  double number_ = 0;
  std::shared_ptr<const std::string> str_;
  std::shared_ptr<const Array> array_;
  std::shared_ptr<Object> object_;
  struct Function {
    std::string name;
    NativeFunction fn;
  };
  std::shared_ptr<const Function> fn_;
};

// Insertion-ordered string-keyed map (JavaScript Map semantics: re-setting a key keeps its place).
class Object {
 public:
  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);
  size_t size() const { return entries_.size(); }
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }
  void clear();

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::pair<std::string, Value>> entries_;
  std::unordered_map<std::string, size_t, Hash, std::equal_to<>> index_;
};

// ---- text forms -----------------------------------------------------------------------------

// JavaScript Number.prototype.toString (shortest round trip; exponent form outside 1e-7..1e21).
std::string js_number_to_string(double v);

// How `{{ value }}` prints (RuntimeValue.toString in the reference): floats keep a ".0",
// containers print as JSON.
std::string to_display_string(const Value& v);

// String(value.value) in the reference: what `~` and `+` concatenate. Floats lose the ".0";
// arrays join their elements' display forms with ","; objects print "[object Map]".
std::string to_raw_string(const Value& v);

struct JsonOptions {
  int indent = 0;  // 0: single line
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool has_separators = false;
  std::string item_separator;
  std::string key_separator;
  bool undefined_as_null = true;
};
// The `tojson` filter: Python json.dumps formatting as the reference produces it.
Result<std::string> to_json_string(const Value& v, const JsonOptions& options);

// JavaScript `a == b` on the values' payloads (loose equality; containers by identity).
bool js_loose_equals(const Value& a, const Value& b);
// JavaScript `a === b` on the payloads.
bool js_strict_equals(const Value& a, const Value& b);
// JavaScript SameValueZero (Set membership).
bool js_same_value_zero(const Value& a, const Value& b);

// ---- UTF-8 helpers (strings are UTF-8; the reference works on UTF-16, see chat_template.h) ----

// Decodes one code point at `pos`; invalid bytes decode as themselves with length 1.
char32_t decode_utf8(std::string_view s, size_t pos, size_t* length);
std::vector<std::string> split_code_points(std::string_view s);
// String.prototype.length: UTF-16 code units.
size_t utf16_length(std::string_view s);
// JavaScript's /\s/ (and String.prototype.trim's) white space.
bool is_js_space(char32_t cp);
std::string_view js_trim_start(std::string_view s);
std::string_view js_trim_end(std::string_view s);
std::string_view js_trim(std::string_view s);
// Length of the JavaScript white space code point at `pos`, 0 if none.
size_t js_space_length_at(std::string_view s, size_t pos);

}  // namespace turbine::chat

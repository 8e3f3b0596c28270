// Filters, tests, string/dict methods and global functions of the chat-template interpreter.
// Dispatch mirrors @huggingface/jinja (which filter exists for which operand type); a few filters
// it lacks but Jinja has (count, round, first/last on strings, ...) are added where it would
// otherwise fail.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "chat/template_eval.h"

namespace turbine::chat {

namespace {

std::string ascii_upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}
std::string ascii_lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}
bool is_word_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
// value.replace(/\b\w/g, c => c.toUpperCase())
std::string title_case(std::string s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (is_word_char(s[i]) && (i == 0 || !is_word_char(s[i - 1])) && s[i] >= 'a' && s[i] <= 'z') {
      s[i] = static_cast<char>(s[i] - 'a' + 'A');
    }
  }
  return s;
}
std::string capitalize(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::vector<std::string> split_on(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    if (p == std::string::npos) break;
    out.push_back(s.substr(start, p - start));
    start = p + sep.size();
  }
  out.push_back(s.substr(start));
  return out;
}

std::string join_strings(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

std::string indent_lines(const std::string& s, size_t width, bool first, bool blank) {
  std::vector<std::string> lines = split_on(s, "\n");
  const std::string pad(width, ' ');
  for (size_t i = 0; i < lines.size(); ++i) {
    if ((!first && i == 0) || (!blank && lines[i].empty())) continue;
    lines[i] = pad + lines[i];
  }
  return join_strings(lines, "\n");
}

// JavaScript parseInt(s, 10); NaN when there are no digits.
double js_parse_int(std::string_view s) {
  s = js_trim_start(s);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  double r = 0;
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') r = r * 10 + (s[i++] - '0');
  if (i == 0) return NAN;
  return negative ? -r : r;
}

// JavaScript parseFloat(s): the longest decimal-literal prefix; NaN when there is none.
double js_parse_float(std::string_view s) {
  s = js_trim_start(s);
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (s.substr(i, 8) == "Infinity") return s[0] == '-' ? -INFINITY : INFINITY;
  size_t digits_start = i;
  bool digits = false;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    ++i;
    digits = true;
  }
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    bool frac = false;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') {
      ++j;
      frac = true;
    }
    if (frac || digits) i = j;
    digits = digits || frac;
  }
  if (!digits) return NAN;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    size_t exp_start = j;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j > exp_start) i = j;
  }
  (void)digits_start;
  std::string literal(s.substr(0, i));
  return std::strtod(literal.c_str(), nullptr);
}

// The reference's replace(): count < 0 or null means all; an empty `old` matches between every
// code point (and at both ends).
std::string replace_all(const std::string& s, const std::string& old_value,
                        const std::string& new_value, double count) {
  if (count == 0) return s;
  double remaining = count < 0 ? INFINITY : count;
  std::string out;
  if (old_value.empty()) {
    std::vector<std::string> chars = split_code_points(s);
    for (size_t i = 0; i <= chars.size(); ++i) {
      if (remaining > 0) {
        out += new_value;
        --remaining;
      }
      if (i < chars.size()) out += chars[i];
    }
    return out;
  }
  size_t start = 0;
  while (remaining > 0) {
    size_t p = s.find(old_value, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += new_value;
    start = p + old_value.size();
    --remaining;
  }
  out.append(s, start, std::string::npos);
  return out;
}

// compareRuntimeValues: <0, 0, >0, or an error for incomparable types.
Result<int> compare_values(const Value& a, const Value& b, bool case_sensitive) {
  auto incomparable = [&]() {
    return invalid_argument(std::string("chat template error: cannot compare ") +
                            value_type_name(a) + " with " + value_type_name(b));
  };
  if (a.is_null() && b.is_null()) return 0;
  if (a.is_null() || b.is_null()) return incomparable();
  if (a.is_undefined() && b.is_undefined()) return 0;
  if (a.is_undefined() || b.is_undefined()) return incomparable();
  auto numeric_like = [](const Value& v) { return v.is_number() || v.is(ValueKind::kBool); };
  if (numeric_like(a) && numeric_like(b)) {
    double x = a.is(ValueKind::kBool) ? (a.as_bool() ? 1 : 0) : a.number();
    double y = b.is(ValueKind::kBool) ? (b.as_bool() ? 1 : 0) : b.number();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind() != b.kind() || !a.is_string()) return incomparable();
  std::string x = case_sensitive ? a.str() : ascii_lower(a.str());
  std::string y = case_sensitive ? b.str() : ascii_lower(b.str());
  return x < y ? -1 : x > y ? 1 : 0;
}

// getAttributeValue: a dotted path through objects/namespaces and array indices.
Value attribute_value(const Value& item, const std::string& path) {
  Value v = item;
  for (const std::string& part : split_on(path, ".")) {
    if (v.is_attribute_container()) {
      const Value* found = v.object().find(part);
      if (!found) return Value::undefined();
      Value next = *found;
      v = std::move(next);
    } else if (v.is_array_like()) {
      double index = js_parse_int(part);
      if (std::isnan(index) || index < 0 || index >= static_cast<double>(v.array().size())) {
        return Value::undefined();
      }
      Value next = v.array()[static_cast<size_t>(index)];
      v = std::move(next);
    } else {
      return Value::undefined();
    }
  }
  return v;
}

// Splits trailing keyword arguments off a native function's argument list.
Object take_kwargs(std::vector<Value>& args) {
  if (!args.empty() && args.back().is(ValueKind::kKwargs)) {
    Object kw = args.back().object();
    args.pop_back();
    return kw;
  }
  return {};
}

// args[i], else kwargs[name], else null.
const Value* arg_or_kwarg(const std::vector<Value>& args, size_t i, const Object& kwargs,
                          const char* name) {
  if (i < args.size()) return &args[i];
  return kwargs.find(name);
}

const char* kMonthsLong[] = {"January", "February", "March",     "April",   "May",      "June",
                             "July",    "August",   "September", "October", "November", "December"};
const char* kMonthsShort[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::string pad2(int n) {
  return (n < 10 ? "0" : "") + std::to_string(n);
}

// The reference's strftime: %Y %m %d %b %B %H %M %%; anything else is kept as written.
std::string format_time(const std::string& fmt, const std::tm& t) {
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%' || i + 1 >= fmt.size()) {
      out.push_back(fmt[i]);
      continue;
    }
    int month = std::clamp(t.tm_mon, 0, 11);
    switch (fmt[i + 1]) {
      case 'Y': out += std::to_string(t.tm_year + 1900); break;
      case 'm': out += pad2(month + 1); break;
      case 'd': out += pad2(t.tm_mday); break;
      case 'b': out += kMonthsShort[month]; break;
      case 'B': out += kMonthsLong[month]; break;
      case 'H': out += pad2(t.tm_hour); break;
      case 'M': out += pad2(t.tm_min); break;
      case '%': out += "%"; break;
      default: out.push_back('%'); continue;
    }
    ++i;
  }
  return out;
}

}  // namespace

// ---- tests --------------------------------------------------------------------------------------

Result<bool> Interpreter::run_test(const std::string& name, const Value& v, const Value* argument) {
  if (name == "boolean") return v.is(ValueKind::kBool);
  if (name == "callable") return v.is(ValueKind::kFunction);
  if (name == "odd" || name == "even") {
    if (!v.is(ValueKind::kInteger)) return error("cannot " + name + " on " + value_type_name(v));
    bool odd = std::fmod(v.number(), 2) != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "false") return v.is(ValueKind::kBool) && !v.as_bool();
  if (name == "true") return v.is(ValueKind::kBool) && v.as_bool();
  if (name == "none") return v.is_null();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is(ValueKind::kInteger);
  if (name == "iterable") return v.is(ValueKind::kArray) || v.is_string();
  if (name == "mapping") return v.is_object_like();
  if (name == "sequence") return v.is_array_like() || v.is_object_like() || v.is_string();
  if (name == "lower") return v.is_string() && v.str() == ascii_lower(v.str());
  if (name == "upper") return v.is_string() && v.str() == ascii_upper(v.str());
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "equalto" || name == "eq") {
    if (argument == nullptr) return error("test '" + name + "' needs a value to compare with");
    return js_strict_equals(v, *argument);
  }
  return error("unknown test: " + name);
}

// ---- filters ------------------------------------------------------------------------------------

Result<Value> Interpreter::apply_filter(const Value& operand, const Node& filter, Env& env) {
  if (filter.kind == NodeKind::kIdentifier) return apply_simple_filter(operand, filter.text, env);
  if (filter.kind == NodeKind::kCall && filter.a->kind == NodeKind::kIdentifier) {
    return apply_call_filter(operand, filter, env);
  }
  return error("unknown filter");
}

Result<Value> Interpreter::apply_simple_filter(const Value& operand, const std::string& name,
                                               Env& env) {
  if (name == "safe") return operand;
  if (name == "tojson") {
    TURBINE_ASSIGN_OR_RETURN(std::string json, to_json_string(operand, JsonOptions{}));
    return make_string(std::move(json));
  }
  if (name == "default") return operand.is_undefined() ? Value::string("") : operand;
  if (operand.is_array_like()) {
    const Array& items = operand.array();
    if (name == "list") return operand;
    if (name == "first") return items.empty() ? Value::undefined() : items.front();
    if (name == "last") return items.empty() ? Value::undefined() : items.back();
    if (name == "length" || name == "count")
      return Value::integer(static_cast<double>(items.size()));
    if (name == "reverse") return Value::array(Array(items.rbegin(), items.rend()));
    if (name == "sort") return sort_values(items, false, false, nullptr);
    if (name == "join") {
      std::string out;
      for (const Value& x : items) {
        if (!x.is_null() && !x.is_undefined()) out += to_raw_string(x);
      }
      return make_string(std::move(out));
    }
    if (name == "string") {
      JsonOptions o;
      o.undefined_as_null = false;
      TURBINE_ASSIGN_OR_RETURN(std::string json, to_json_string(operand, o));
      return make_string(std::move(json));
    }
    if (name == "unique") {
      Array out;
      for (const Value& x : items) {
        bool seen = std::any_of(out.begin(), out.end(),
                                [&](const Value& y) { return js_same_value_zero(x, y); });
        if (!seen) out.push_back(x);
      }
      return Value::array(std::move(out));
    }
    return error("unknown ArrayValue filter: " + name);
  }
  if (operand.is_string()) {
    const std::string& s = operand.str();
    if (name == "length" || name == "count")
      return Value::integer(static_cast<double>(utf16_length(s)));
    if (name == "upper") return make_string(ascii_upper(s));
    if (name == "lower") return make_string(ascii_lower(s));
    if (name == "title") return make_string(title_case(s));
    if (name == "capitalize") return make_string(capitalize(s));
    if (name == "trim") return make_string(std::string(js_trim(s)));
    if (name == "indent") return make_string(indent_lines(s, 4, false, false));
    if (name == "join" || name == "string") return operand;
    if (name == "int") {
      double v = js_parse_int(s);
      return Value::integer(std::isnan(v) ? 0 : v);
    }
    if (name == "float") {
      double v = js_parse_float(s);
      return Value::floating(std::isnan(v) ? 0 : v);
    }
    if (name == "first" || name == "last" || name == "reverse" || name == "list") {
      std::vector<std::string> chars = split_code_points(s);
      if (name == "first") return chars.empty() ? Value::undefined() : Value::string(chars.front());
      if (name == "last") return chars.empty() ? Value::undefined() : Value::string(chars.back());
      if (name == "reverse") {
        std::reverse(chars.begin(), chars.end());
        return make_string(join_strings(chars, ""));
      }
      Array out;
      for (std::string& c : chars) out.push_back(Value::string(std::move(c)));
      return Value::array(std::move(out));
    }
    return error("unknown StringValue filter: " + name);
  }
  if (operand.is_number()) {
    const double v = operand.number();
    const bool is_int = operand.is(ValueKind::kInteger);
    if (name == "abs") return is_int ? Value::integer(std::fabs(v)) : Value::floating(std::fabs(v));
    if (name == "int") return Value::integer(std::floor(v));
    if (name == "float") return Value::floating(v);
    if (name == "string") return make_string(to_display_string(operand));
    if (name == "round") return Value::floating(std::round(v));
    return error("unknown NumericValue filter: " + name);
  }
  if (operand.is_object_like()) {
    if (name == "items") {
      Array out;
      for (const auto& [k, v] : operand.object().entries()) {
        out.push_back(Value::array({Value::string(k), v}));
      }
      return Value::array(std::move(out));
    }
    if (name == "length" || name == "count") {
      return Value::integer(static_cast<double>(operand.object().size()));
    }
    if (name == "string") return make_string(to_display_string(operand));
    if (name == "list") {
      Array keys;
      for (const auto& [k, v] : operand.object().entries()) keys.push_back(Value::string(k));
      return Value::array(std::move(keys));
    }
    TURBINE_ASSIGN_OR_RETURN(Value method, object_method(operand, name));
    if (method.is(ValueKind::kFunction)) {
      std::vector<Value> no_args;
      return call_function(method, no_args, env);
    }
    return error("unknown ObjectValue filter: " + name);
  }
  if (operand.is(ValueKind::kBool)) {
    const bool b = operand.as_bool();
    if (name == "bool") return operand;
    if (name == "int") return Value::integer(b ? 1 : 0);
    if (name == "float") return Value::floating(b ? 1 : 0);
    if (name == "string") return Value::string(b ? "true" : "false");
    return error("unknown BooleanValue filter: " + name);
  }
  return error("cannot apply filter \"" + name + "\" to type: " + value_type_name(operand));
}

Result<Value> Interpreter::apply_call_filter(const Value& operand, const Node& call, Env& env) {
  const std::string& name = call.a->text;
  std::vector<Value> args;
  Object kwargs;
  if (name == "selectattr" || name == "rejectattr") {
    // Checked before the arguments are evaluated, as the reference does.
    if (!operand.is_array_like()) {
      return error("cannot apply filter \"" + name + "\" to type: " + value_type_name(operand));
    }
    for (const Value& item : operand.array()) {
      if (!item.is_attribute_container()) {
        return error("`" + name + "` can only be applied to array of objects");
      }
    }
    for (const NodePtr& a : call.list) {
      if (a->kind != NodeKind::kString) return error("arguments of `" + name + "` must be strings");
    }
  }
  TURBINE_RETURN_IF_ERROR(eval_arguments(call.list, env, args, kwargs));

  if (name == "tojson") {
    JsonOptions o;
    if (const Value* indent = kwargs.find("indent")) {
      if (!indent->is(ValueKind::kInteger) && !indent->is_null()) {
        return error("if set, indent must be a number");
      }
      if (indent->is(ValueKind::kInteger)) {
        if (indent->number() > 64) return error("tojson indent must be at most 64");
        o.indent = indent->number() > 0 ? static_cast<int>(indent->number()) : 0;
      }
    }
    if (const Value* ea = kwargs.find("ensure_ascii")) {
      if (!ea->is(ValueKind::kBool)) return error("if set, ensure_ascii must be a boolean");
      o.ensure_ascii = ea->as_bool();
    }
    if (const Value* sk = kwargs.find("sort_keys")) {
      if (!sk->is(ValueKind::kBool)) return error("if set, sort_keys must be a boolean");
      o.sort_keys = sk->as_bool();
    }
    if (const Value* sep = kwargs.find("separators")) {
      if (sep->is_array_like()) {
        const Array& parts = sep->array();
        if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string()) {
          return error("separators must be a tuple of two strings");
        }
        o.has_separators = true;
        o.item_separator = parts[0].str();
        o.key_separator = parts[1].str();
      } else if (!sep->is_null()) {
        return error("if set, separators must be a tuple of two strings");
      }
    }
    TURBINE_ASSIGN_OR_RETURN(std::string json, to_json_string(operand, o));
    return make_string(std::move(json));
  }
  if (name == "join") {
    std::vector<std::string> parts;
    if (operand.is_string()) {
      parts = split_code_points(operand.str());
    } else if (operand.is_array_like()) {
      for (const Value& x : operand.array()) {
        parts.push_back(x.is_null() || x.is_undefined() ? std::string() : to_raw_string(x));
      }
    } else {
      return error("cannot apply filter \"join\" to type: " +
                   std::string(value_type_name(operand)));
    }
    const Value* sep = arg_or_kwarg(args, 0, kwargs, "separator");
    if (sep && !sep->is_string()) return error("separator must be a string");
    return make_string(join_strings(parts, sep ? sep->str() : ""));
  }
  if (name == "int" || name == "float") {
    const bool to_int = name == "int";
    const Value* dflt = arg_or_kwarg(args, 0, kwargs, "default");
    Value fallback = dflt ? *dflt : (to_int ? Value::integer(0) : Value::floating(0));
    if (operand.is_string()) {
      double v = to_int ? js_parse_int(operand.str()) : js_parse_float(operand.str());
      if (std::isnan(v)) return fallback;
      return to_int ? Value::integer(v) : Value::floating(v);
    }
    if (operand.is_number()) return operand;
    if (operand.is(ValueKind::kBool)) {
      double v = operand.as_bool() ? 1 : 0;
      return to_int ? Value::integer(v) : Value::floating(v);
    }
    return error("cannot apply filter \"" + name + "\" to type: " + value_type_name(operand));
  }
  if (name == "default") {
    Value dflt = args.empty() ? Value::string("") : args[0];
    const Value* boolean = arg_or_kwarg(args, 1, kwargs, "boolean");
    if (boolean && !boolean->is(ValueKind::kBool)) {
      return error("`default` filter flag must be a boolean");
    }
    if (operand.is_undefined() || (boolean && boolean->as_bool() && !operand.truthy())) return dflt;
    return operand;
  }
  if (operand.is_array_like()) {
    const Array& items = operand.array();
    if (name == "sort") {
      const Value* reverse = arg_or_kwarg(args, 0, kwargs, "reverse");
      const Value* case_sensitive = arg_or_kwarg(args, 1, kwargs, "case_sensitive");
      const Value* attribute = arg_or_kwarg(args, 2, kwargs, "attribute");
      if (reverse && !reverse->is(ValueKind::kBool)) return error("reverse must be a boolean");
      if (case_sensitive && !case_sensitive->is(ValueKind::kBool)) {
        return error("case_sensitive must be a boolean");
      }
      if (attribute && !attribute->is_string() && !attribute->is(ValueKind::kInteger) &&
          !attribute->is_null()) {
        return error("attribute must be a string, integer, or null");
      }
      if (attribute && attribute->is_null()) attribute = nullptr;
      return sort_values(items, reverse && reverse->as_bool(),
                         case_sensitive && case_sensitive->as_bool(), attribute);
    }
    if (name == "selectattr" || name == "rejectattr") {
      const bool select = name == "selectattr";
      if (args.empty()) return error("`" + name + "` needs an attribute name");
      const std::string& attr = args[0].str();
      const Value* value = args.size() > 2 ? &args[2] : nullptr;
      Array out;
      for (const Value& item : items) {
        const Value* a = item.object().find(attr);
        bool result = false;
        if (a != nullptr) {
          if (args.size() > 1) {
            TURBINE_ASSIGN_OR_RETURN(result, run_test(args[1].str(), *a, value));
          } else {
            result = a->truthy();
          }
        }
        if (result == select) out.push_back(item);
      }
      return Value::array(std::move(out));
    }
    if (name == "map") {
      const Value* attr = kwargs.find("attribute");
      if (attr == nullptr) {
        return error("`map` expressions without `attribute` set are not currently supported");
      }
      if (!attr->is_string()) return error("attribute must be a string");
      const Value* dflt = kwargs.find("default");
      Array out;
      for (const Value& item : items) {
        if (!item.is_attribute_container()) return error("items in map must be an object");
        Value v = attribute_value(item, attr->str());
        out.push_back(v.is_undefined() && dflt ? *dflt : v);
      }
      return Value::array(std::move(out));
    }
    return error("unknown ArrayValue filter: " + name);
  }
  if (operand.is_string()) {
    if (name == "indent") {
      const Value* width = arg_or_kwarg(args, 0, kwargs, "width");
      if (width && !width->is(ValueKind::kInteger)) return error("width must be a number");
      const Value* first = arg_or_kwarg(args, 1, kwargs, "first");
      const Value* blank = arg_or_kwarg(args, 2, kwargs, "blank");
      double w = width ? width->number() : 4;
      if (w > 1024) return error("indent width must be at most 1024");
      return make_string(indent_lines(operand.str(), w > 0 ? static_cast<size_t>(w) : 0,
                                      first && first->truthy(), blank && blank->truthy()));
    }
    if (name == "replace") {
      TURBINE_ASSIGN_OR_RETURN(Value method, string_method(operand, "replace"));
      if (kwargs.size() > 0) args.push_back(Value::kwargs(kwargs));
      return call_function(method, args, env);
    }
    return error("unknown StringValue filter: " + name);
  }
  if (operand.is_number() && name == "round") {
    const Value* precision = arg_or_kwarg(args, 0, kwargs, "precision");
    const Value* method = arg_or_kwarg(args, 1, kwargs, "method");
    double p = precision && precision->is_number() ? precision->number() : 0;
    double scale = std::pow(10.0, std::clamp(p, 0.0, 15.0));
    double v = operand.number() * scale;
    std::string m = method && method->is_string() ? method->str() : "common";
    if (m == "floor")
      v = std::floor(v);
    else if (m == "ceil")
      v = std::ceil(v);
    else
      v = std::round(v);
    return Value::floating(v / scale);
  }
  if (operand.is_object_like()) {
    TURBINE_ASSIGN_OR_RETURN(Value method, object_method(operand, name));
    if (method.is(ValueKind::kFunction)) {
      if (kwargs.size() > 0) args.push_back(Value::kwargs(kwargs));
      return call_function(method, args, env);
    }
    return error("unknown ObjectValue filter: " + name);
  }
  return error("cannot apply filter \"" + name + "\" to type: " + value_type_name(operand));
}

Result<Value> Interpreter::sort_values(const Array& items, bool reverse, bool case_sensitive,
                                       const Value* attribute) {
  std::vector<Value> keys;
  keys.reserve(items.size());
  for (const Value& item : items) {
    if (attribute == nullptr) {
      keys.push_back(item);
    } else {
      std::string path =
          attribute->is_string() ? attribute->str() : js_number_to_string(attribute->number());
      keys.push_back(attribute_value(item, path));
    }
  }
  // Incomparable pairs are a property of the types alone, so checking every key against the
  // first finds any error before sorting (the comparator must not fail midway).
  for (size_t i = 1; i < keys.size(); ++i) {
    TURBINE_RETURN_IF_ERROR(compare_values(keys[0], keys[i], case_sensitive).status());
  }
  if (keys.size() >= 2)
    TURBINE_RETURN_IF_ERROR(compare_values(keys[0], keys[0], case_sensitive).status());
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    Result<int> c = compare_values(keys[a], keys[b], case_sensitive);
    int r = c.has_value() ? *c : 0;
    return reverse ? r > 0 : r < 0;
  });
  Array out;
  out.reserve(items.size());
  for (size_t i : order) out.push_back(items[i]);
  return Value::array(std::move(out));
}

// ---- methods ------------------------------------------------------------------------------------

Result<Value> Interpreter::string_method(const Value& self, const std::string& name) {
  const std::shared_ptr<const std::string> sp = self.str_ptr();
  auto method = [&](NativeFunction fn) { return Value::function(name, std::move(fn)); };
  if (name == "length") return Value::integer(static_cast<double>(utf16_length(self.str())));
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" ||
      name == "strip" || name == "lstrip" || name == "rstrip") {
    // Arguments are ignored, as in the reference (`strip('\n')` strips all white space).
    return method([sp, name](Interpreter& in, Env&, std::vector<Value>&) -> Result<Value> {
      const std::string& s = *sp;
      if (name == "upper") return in.make_string(ascii_upper(s));
      if (name == "lower") return in.make_string(ascii_lower(s));
      if (name == "title") return in.make_string(title_case(s));
      if (name == "capitalize") return in.make_string(capitalize(s));
      if (name == "strip") return in.make_string(std::string(js_trim(s)));
      if (name == "lstrip") return in.make_string(std::string(js_trim_start(s)));
      return in.make_string(std::string(js_trim_end(s)));
    });
  }
  if (name == "startswith" || name == "endswith") {
    const bool starts = name == "startswith";
    return method(
        [sp, starts, name](Interpreter& in, Env&, std::vector<Value>& args) -> Result<Value> {
          auto matches = [&](const std::string& p) {
            const std::string& s = *sp;
            if (p.size() > s.size()) return false;
            return starts ? s.compare(0, p.size(), p) == 0
                          : s.compare(s.size() - p.size(), p.size(), p) == 0;
          };
          if (args.empty()) return in.error(name + "() requires at least one argument");
          const Value& pattern = args[0];
          if (pattern.is_string()) return Value::boolean(matches(pattern.str()));
          if (pattern.is_array_like()) {
            for (const Value& p : pattern.array()) {
              if (!p.is_string()) return in.error(name + "() tuple elements must be strings");
              if (matches(p.str())) return Value::boolean(true);
            }
            return Value::boolean(false);
          }
          return in.error(name + "() argument must be a string or tuple of strings");
        });
  }
  if (name == "split") {
    return method([sp](Interpreter& in, Env&, std::vector<Value>& args) -> Result<Value> {
      Value sep = args.size() > 0 ? args[0] : Value::null();
      if (!sep.is_string() && !sep.is_null())
        return in.error("sep argument must be a string or null");
      Value maxsplit_v = args.size() > 1 ? args[1] : Value::integer(-1);
      if (!maxsplit_v.is(ValueKind::kInteger))
        return in.error("maxsplit argument must be a number");
      const double maxsplit = maxsplit_v.number();
      std::vector<std::string> parts;
      if (sep.is_null()) {
        std::string_view text = js_trim_start(*sp);
        size_t i = 0;
        while (i < text.size()) {
          size_t start = i;
          while (i < text.size() && js_space_length_at(text, i) == 0) {
            size_t len = 1;
            decode_utf8(text, i, &len);
            i += len;
          }
          if (maxsplit != -1 && static_cast<double>(parts.size()) >= maxsplit) {
            parts.emplace_back(text.substr(start));
            break;
          }
          parts.emplace_back(text.substr(start, i - start));
          while (size_t len = js_space_length_at(text, i)) i += len;
        }
      } else {
        if (sep.str().empty()) return in.error("empty separator");
        parts = split_on(*sp, sep.str());
        if (maxsplit != -1 && static_cast<double>(parts.size()) > maxsplit) {
          size_t keep = maxsplit < 0 ? 0 : static_cast<size_t>(maxsplit);
          std::vector<std::string> tail(parts.begin() + static_cast<long>(keep), parts.end());
          parts.resize(keep);
          parts.push_back(join_strings(tail, sep.str()));
        }
      }
      TURBINE_RETURN_IF_ERROR(in.charge_iterations(parts.size()));
      Array out;
      for (std::string& p : parts) out.push_back(Value::string(std::move(p)));
      return Value::array(std::move(out));
    });
  }
  if (name == "replace") {
    return method([sp](Interpreter& in, Env&, std::vector<Value>& args) -> Result<Value> {
      if (args.size() < 2) return in.error("replace() requires at least two arguments");
      if (!args[0].is_string() || !args[1].is_string()) {
        return in.error("replace() arguments must be strings");
      }
      Value count = Value::null();
      if (args.size() > 2) {
        if (args[2].is(ValueKind::kKwargs)) {
          const Value* c = args[2].object().find("count");
          count = c ? *c : Value::null();
        } else {
          count = args[2];
        }
      }
      if (!count.is(ValueKind::kInteger) && !count.is_null()) {
        return in.error("replace() count argument must be a number or null");
      }
      const std::string& old_value = args[0].str();
      const std::string& new_value = args[1].str();
      // Bound the result before building it.
      double n = count.is_null() ? -1 : count.number();
      size_t occurrences =
          old_value.empty() ? utf16_length(*sp) + 1 : sp->size() / old_value.size() + 1;
      if (n >= 0) occurrences = std::min(occurrences, static_cast<size_t>(std::min(n, 1e15)));
      if (sp->size() + occurrences * new_value.size() > 4 * (sp->size() + 1) + (64u << 20)) {
        return in.error("replace() result too large");
      }
      return in.make_string(replace_all(*sp, old_value, new_value, n));
    });
  }
  return Value::undefined();
}

Result<Value> Interpreter::object_method(const Value& self, const std::string& name) {
  auto method = [&](NativeFunction fn) { return Value::function(name, std::move(fn)); };
  Value obj = self;
  if (name == "get") {
    return method([obj](Interpreter& in, Env&, std::vector<Value>& args) -> Result<Value> {
      if (args.empty() || !args[0].is_string()) {
        return in.error(std::string("object key must be a string: got ") +
                        (args.empty() ? "UndefinedValue" : value_type_name(args[0])));
      }
      if (const Value* v = obj.object().find(args[0].str())) return *v;
      return args.size() > 1 ? args[1] : Value::null();
    });
  }
  if (name == "items" || name == "keys" || name == "values") {
    return method([obj, name](Interpreter&, Env&, std::vector<Value>&) -> Result<Value> {
      Array out;
      for (const auto& [k, v] : obj.object().entries()) {
        if (name == "items")
          out.push_back(Value::array({Value::string(k), v}));
        else if (name == "keys")
          out.push_back(Value::string(k));
        else
          out.push_back(v);
      }
      return Value::array(std::move(out));
    });
  }
  if (name == "dictsort") {
    return method([obj](Interpreter& in, Env&, std::vector<Value>& args) -> Result<Value> {
      Object kwargs = take_kwargs(args);
      const Value* case_sensitive = arg_or_kwarg(args, 0, kwargs, "case_sensitive");
      const Value* by = arg_or_kwarg(args, 1, kwargs, "by");
      const Value* reverse = arg_or_kwarg(args, 2, kwargs, "reverse");
      if (case_sensitive && !case_sensitive->is(ValueKind::kBool)) {
        return in.error("case_sensitive must be a boolean");
      }
      if (by && (!by->is_string() || (by->str() != "key" && by->str() != "value"))) {
        return in.error("by must be either 'key' or 'value'");
      }
      if (reverse && !reverse->is(ValueKind::kBool)) return in.error("reverse must be a boolean");
      Array pairs;
      for (const auto& [k, v] : obj.object().entries()) {
        pairs.push_back(Value::array({Value::string(k), v}));
      }
      Value attribute = Value::string(by && by->str() == "value" ? "1" : "0");
      return in.sort_values(pairs, reverse && reverse->as_bool(),
                            case_sensitive && case_sensitive->as_bool(), &attribute);
    });
  }
  return Value::undefined();
}

// ---- globals ------------------------------------------------------------------------------------

void Interpreter::install_globals(Env& globals) {
  globals.set("false", Value::boolean(false));
  globals.set("true", Value::boolean(true));
  globals.set("none", Value::null());
  globals.set("False", Value::boolean(false));
  globals.set("True", Value::boolean(true));
  globals.set("None", Value::null());
  globals.set("raise_exception",
              Value::function("raise_exception",
                              [](Interpreter&, Env&, std::vector<Value>& args) -> Result<Value> {
                                std::string msg =
                                    args.empty() || args[0].is(ValueKind::kKwargs)
                                        ? "raise_exception() called by the chat template"
                                        : to_display_string(args[0]);
                                return invalid_argument(msg);
                              }));
  globals.set(
      "range",
      Value::function(
          "range", [](Interpreter& in, Env&, std::vector<Value>& args) -> Result<Value> {
            take_kwargs(args);
            if (args.empty() || args.size() > 3)
              return in.error("range() expects 1 to 3 arguments");
            for (const Value& a : args) {
              if (!a.is_number()) return in.error("range() arguments must be numbers");
            }
            double start = 0, stop = 0, step = 1;
            if (args.size() == 1) {
              stop = args[0].number();
            } else {
              start = args[0].number();
              stop = args[1].number();
              if (args.size() == 3) step = args[2].number();
            }
            if (step == 0) return in.error("range() step must not be zero");
            if (std::isnan(start) || std::isnan(stop) || std::isnan(step)) return Value::array({});
            double count =
                step > 0 ? std::ceil((stop - start) / step) : std::ceil((start - stop) / -step);
            if (count > 1e15 || count > static_cast<double>(in.limits_.max_loop_iterations)) {
              return in.error("range() of more than " +
                              std::to_string(in.limits_.max_loop_iterations) + " items");
            }
            Array out;
            for (double i = start; step > 0 ? i < stop : i > stop; i += step) {
              out.push_back(std::floor(i) == i ? Value::integer(i) : Value::floating(i));
              if (out.size() > in.limits_.max_loop_iterations) return in.error("range() too large");
            }
            return Value::array(std::move(out));
          }));
  globals.set("strftime_now",
              Value::function("strftime_now",
                              [](Interpreter& in, Env&, std::vector<Value>& args) -> Result<Value> {
                                if (args.empty() || !args[0].is_string())
                                  return in.error("strftime_now() expects a format string");
                                std::tm now = in.local_time()();
                                return in.make_string(format_time(args[0].str(), now));
                              }));
  globals.set(
      "namespace",
      Value::function(
          "namespace", [](Interpreter& in, Env&, std::vector<Value>& args) -> Result<Value> {
            Object kwargs = take_kwargs(args);
            if (args.size() > 1) {
              return in.error("namespace expected at most 1 argument, got " +
                              std::to_string(args.size()));
            }
            Object entries;
            if (args.size() == 1) {
              const Value& source = args[0];
              if (source.is_object_like()) {
                for (const auto& [k, v] : source.object().entries()) entries.set(k, v);
              } else if (source.is_array_like()) {
                for (const Value& pair : source.array()) {
                  Array kv;
                  if (pair.is_array_like()) {
                    kv = pair.array();
                  } else if (pair.is_string()) {
                    for (std::string& c : split_code_points(pair.str()))
                      kv.push_back(Value::string(std::move(c)));
                  }
                  if (kv.size() != 2) {
                    return in.error(
                        "namespace expected an object or an iterable of [key, value] pairs");
                  }
                  if (!kv[0].is_string()) return in.error("namespace keys must be strings");
                  entries.set(kv[0].str(), kv[1]);
                }
              } else {
                return in.error(std::string("'") + value_type_name(source) +
                                "' object is not iterable");
              }
            }
            for (const auto& [k, v] : kwargs.entries()) entries.set(k, v);
            return in.new_namespace(std::move(entries));
          }));
}

}  // namespace turbine::chat

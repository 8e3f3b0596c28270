#include "chat/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace turbine::chat {

namespace {

const std::string& empty_string() {
  static const std::string kEmpty;
  return kEmpty;
}
const Array& empty_array() {
  static const Array kEmpty;
  return kEmpty;
}
const Object& empty_object() {
  static const Object kEmpty;
  return kEmpty;
}
const NativeFunction& empty_function() {
  static const NativeFunction kEmpty;
  return kEmpty;
}

// Deep enough for any real tool schema; a cycle through a namespace stops here instead of
// exhausting the stack.
constexpr int kMaxJsonDepth = 256;

}  // namespace

// ---- Object -----------------------------------------------------------------------------------

const Value* Object::find(std::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

void Object::set(std::string key, Value value) {
  auto it = index_.find(std::string_view(key));
  if (it != index_.end()) {
    entries_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(key, entries_.size());
  entries_.emplace_back(std::move(key), std::move(value));
}

void Object::clear() {
  entries_.clear();
  index_.clear();
}

// ---- Value ------------------------------------------------------------------------------------

Value Value::null() {
  Value v;
  v.kind_ = ValueKind::kNull;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.kind_ = ValueKind::kBool;
  v.bool_ = b;
  return v;
}
Value Value::integer(double d) {
  Value v;
  v.kind_ = ValueKind::kInteger;
  v.number_ = d;
  return v;
}
Value Value::floating(double d) {
  Value v;
  v.kind_ = ValueKind::kFloat;
  v.number_ = d;
  return v;
}
Value Value::string(std::string s) {
  return string(std::make_shared<const std::string>(std::move(s)));
}
Value Value::string(std::shared_ptr<const std::string> s) {
  Value v;
  v.kind_ = ValueKind::kString;
  v.str_ = std::move(s);
  return v;
}
Value Value::array(Array items) {
  Value v;
  v.kind_ = ValueKind::kArray;
  v.array_ = std::make_shared<const Array>(std::move(items));
  return v;
}
Value Value::tuple(Array items) {
  Value v = array(std::move(items));
  v.kind_ = ValueKind::kTuple;
  return v;
}
Value Value::object(Object obj) {
  Value v;
  v.kind_ = ValueKind::kObject;
  v.object_ = std::make_shared<Object>(std::move(obj));
  return v;
}
Value Value::kwargs(Object obj) {
  Value v = object(std::move(obj));
  v.kind_ = ValueKind::kKwargs;
  return v;
}
Value Value::name_space(Object obj) {
  Value v = object(std::move(obj));
  v.kind_ = ValueKind::kNamespace;
  return v;
}
Value Value::function(std::string name, NativeFunction fn) {
  Value v;
  v.kind_ = ValueKind::kFunction;
  v.fn_ = std::make_shared<const Function>(Function{std::move(name), std::move(fn)});
  return v;
}

const std::string& Value::str() const {
  return str_ ? *str_ : empty_string();
}
const Array& Value::array() const {
  return array_ ? *array_ : empty_array();
}
const Object& Value::object() const {
  return object_ ? *object_ : empty_object();
}
Object& Value::mutable_object() const {
  return *object_;
}
const std::string& Value::function_name() const {
  return fn_ ? fn_->name : empty_string();
}
const NativeFunction& Value::function() const {
  return fn_ ? fn_->fn : empty_function();
}

const void* Value::identity() const {
  if (array_) return array_.get();
  if (object_) return object_.get();
  if (fn_) return fn_.get();
  return nullptr;
}

bool Value::truthy() const {
  switch (kind_) {
    case ValueKind::kUndefined:
    case ValueKind::kNull: return false;
    case ValueKind::kBool: return bool_;
    case ValueKind::kInteger:
    case ValueKind::kFloat: return number_ != 0 && !std::isnan(number_);
    case ValueKind::kString: return !str().empty();
    case ValueKind::kArray:
    case ValueKind::kTuple: return !array().empty();
    case ValueKind::kObject:
    case ValueKind::kKwargs: return object().size() > 0;
    case ValueKind::kNamespace:
    case ValueKind::kFunction: return true;
  }
  return false;
}

// ---- numbers ----------------------------------------------------------------------------------

std::string js_number_to_string(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return "0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));  // "-1.2345e+02"
  std::string out;
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  int exponent = 0;
  std::from_chars(sci.data() + e_pos + (sci[e_pos + 1] == '+' ? 2 : 1), sci.data() + sci.size(),
                  exponent);
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;  // value = 0.digits * 10^n
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<size_t>(n));
    out.push_back('.');
    out += digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out += digits;
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out += digits.substr(1);
    }
    out.push_back('e');
    out.push_back(n - 1 >= 0 ? '+' : '-');
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

namespace {

std::string float_display(double v) {
  if (v == 0 && std::signbit(v)) return "-0.0";
  if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 1e21) {
    return js_number_to_string(v) + ".0";
  }
  return js_number_to_string(v);
}

void append_hex4(std::string& out, unsigned unit) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "\\u%04x", unit & 0xFFFFu);
  out += buf;
}

// JSON.stringify of a string, then (optionally) the reference's makeAsciiSafe.
void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
            append_hex4(out, c);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    size_t len = 1;
    char32_t cp = decode_utf8(s, i, &len);
    if (!ensure_ascii) {
      out.append(s.substr(i, len));
    } else if (cp >= 0x10000) {
      unsigned v = static_cast<unsigned>(cp) - 0x10000u;
      append_hex4(out, 0xD800u + (v >> 10));
      append_hex4(out, 0xDC00u + (v & 0x3FFu));
    } else {
      append_hex4(out, static_cast<unsigned>(cp));
    }
    i += len;
  }
  out.push_back('"');
}

Status append_json(std::string& out, const Value& v, const JsonOptions& o, int depth) {
  if (depth > kMaxJsonDepth) {
    return invalid_argument("chat template error: value nested deeper than " +
                            std::to_string(kMaxJsonDepth) + " levels (or cyclic)");
  }
  switch (v.kind()) {
    case ValueKind::kNull: out += "null"; return Status::ok();
    case ValueKind::kUndefined:
      out += o.undefined_as_null ? "null" : "undefined";
      return Status::ok();
    case ValueKind::kBool: out += v.as_bool() ? "true" : "false"; return Status::ok();
    case ValueKind::kInteger:
    case ValueKind::kFloat:
      out += std::isfinite(v.number()) ? js_number_to_string(v.number()) : "null";
      return Status::ok();
    case ValueKind::kString: append_json_string(out, v.str(), o.ensure_ascii); return Status::ok();
    case ValueKind::kFunction:
    case ValueKind::kTuple:
    case ValueKind::kKwargs:
      // The reference cannot serialize these either.
      return invalid_argument(std::string("chat template error: cannot convert to JSON: ") +
                              (v.is(ValueKind::kTuple)    ? "tuple"
                               : v.is(ValueKind::kKwargs) ? "keyword arguments"
                                                          : "function"));
    default: break;
  }
  const std::string item_sep = o.has_separators ? o.item_separator : (o.indent > 0 ? "," : ", ");
  const std::string key_sep = o.has_separators ? o.key_separator : ": ";
  const std::string indent_unit(static_cast<size_t>(std::max(o.indent, 0)), ' ');
  std::string base_padding = "\n";
  for (int i = 0; i < depth; ++i) base_padding += indent_unit;
  const std::string child_padding = base_padding + indent_unit;
  if (v.is_array_like()) {
    const Array& items = v.array();
    out.push_back('[');
    if (o.indent > 0 && !items.empty()) out += child_padding;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) {
        out += item_sep;
        if (o.indent > 0) out += child_padding;
      }
      TURBINE_RETURN_IF_ERROR(append_json(out, items[i], o, depth + 1));
    }
    if (o.indent > 0 && !items.empty()) out += base_padding;
    out.push_back(']');
    return Status::ok();
  }
  std::vector<const std::pair<std::string, Value>*> entries;
  for (const auto& e : v.object().entries()) entries.push_back(&e);
  if (o.sort_keys) {
    // The reference sorts with localeCompare; code-point order agrees for ASCII keys.
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto* a, const auto* b) { return a->first < b->first; });
  }
  out.push_back('{');
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += item_sep;
    if (o.indent > 0) out += child_padding;
    append_json_string(out, entries[i]->first, o.ensure_ascii);
    out += key_sep;
    TURBINE_RETURN_IF_ERROR(append_json(out, entries[i]->second, o, depth + 1));
  }
  if (o.indent > 0 && !entries.empty()) out += base_padding;
  out.push_back('}');
  return Status::ok();
}

// JavaScript ToNumber on a string.
double js_string_to_number(std::string_view s) {
  s = js_trim(s);
  if (s.empty()) return 0;
  std::string_view body = s;
  bool negative = false;
  if (body.front() == '+' || body.front() == '-') {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  if (body == "Infinity") return negative ? -INFINITY : INFINITY;
  if (s.size() > 2 && s[0] == '0' &&
      (s[1] == 'x' || s[1] == 'X' || s[1] == 'o' || s[1] == 'O' || s[1] == 'b' || s[1] == 'B')) {
    int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
    double r = 0;
    for (char c : s.substr(2)) {
      int d = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : 99;
      if (d >= base) return NAN;
      r = r * base + d;
    }
    return r;
  }
  // Decimal literal: digits [. digits] [e[+-]digits]; at least one digit in the mantissa.
  size_t i = 0;
  bool digits = false;
  while (i < body.size() && body[i] >= '0' && body[i] <= '9') {
    ++i;
    digits = true;
  }
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && body[i] >= '0' && body[i] <= '9') {
      ++i;
      digits = true;
    }
  }
  if (!digits) return NAN;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    ++i;
    if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
    bool exp_digits = false;
    while (i < body.size() && body[i] >= '0' && body[i] <= '9') {
      ++i;
      exp_digits = true;
    }
    if (!exp_digits) return NAN;
  }
  if (i != body.size()) return NAN;
  double r = 0;
  std::string copy(body);
  std::from_chars(copy.data(), copy.data() + copy.size(), r);
  return negative ? -r : r;
}

enum class JsType { kUndefined, kNull, kBoolean, kNumber, kString, kObject };

JsType js_type(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined: return JsType::kUndefined;
    case ValueKind::kNull: return JsType::kNull;
    case ValueKind::kBool: return JsType::kBoolean;
    case ValueKind::kInteger:
    case ValueKind::kFloat: return JsType::kNumber;
    case ValueKind::kString: return JsType::kString;
    default: return JsType::kObject;
  }
}

}  // namespace

std::string to_display_string(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined: return "undefined";
    case ValueKind::kNull: return "null";
    case ValueKind::kBool: return v.as_bool() ? "true" : "false";
    case ValueKind::kInteger: return js_number_to_string(v.number());
    case ValueKind::kFloat: return float_display(v.number());
    case ValueKind::kString: return v.str();
    case ValueKind::kFunction: return "[function " + v.function_name() + "]";
    default: break;
  }
  JsonOptions o;
  o.undefined_as_null = false;
  std::string out;
  Status st = append_json(out, v, o, 0);
  if (!st.is_ok()) return "[cyclic]";
  return out;
}

std::string to_raw_string(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kFloat: return js_number_to_string(v.number());
    case ValueKind::kArray:
    case ValueKind::kTuple: {
      std::string out;
      const Array& items = v.array();
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out.push_back(',');
        out += to_display_string(items[i]);
      }
      return out;
    }
    case ValueKind::kObject:
    case ValueKind::kKwargs:
    case ValueKind::kNamespace: return "[object Map]";
    default: return to_display_string(v);
  }
}

Result<std::string> to_json_string(const Value& v, const JsonOptions& options) {
  std::string out;
  TURBINE_RETURN_IF_ERROR(append_json(out, v, options, 0));
  return out;
}

bool js_strict_equals(const Value& a, const Value& b) {
  JsType ta = js_type(a), tb = js_type(b);
  if (ta != tb) return false;
  switch (ta) {
    case JsType::kUndefined:
    case JsType::kNull: return true;
    case JsType::kBoolean: return a.as_bool() == b.as_bool();
    case JsType::kNumber: return a.number() == b.number();
    case JsType::kString: return a.str() == b.str();
    case JsType::kObject: return a.identity() == b.identity();
  }
  return false;
}

bool js_same_value_zero(const Value& a, const Value& b) {
  if (js_type(a) == JsType::kNumber && js_type(b) == JsType::kNumber && std::isnan(a.number()) &&
      std::isnan(b.number())) {
    return true;
  }
  return js_strict_equals(a, b);
}

bool js_loose_equals(const Value& a, const Value& b) {
  JsType ta = js_type(a), tb = js_type(b);
  if (ta == tb) return js_strict_equals(a, b);
  auto nullish = [](JsType t) { return t == JsType::kNull || t == JsType::kUndefined; };
  if (nullish(ta) || nullish(tb)) return nullish(ta) && nullish(tb);
  if (ta == JsType::kBoolean) return js_loose_equals(Value::integer(a.as_bool() ? 1 : 0), b);
  if (tb == JsType::kBoolean) return js_loose_equals(a, Value::integer(b.as_bool() ? 1 : 0));
  if (ta == JsType::kNumber && tb == JsType::kString) {
    return a.number() == js_string_to_number(b.str());
  }
  if (ta == JsType::kString && tb == JsType::kNumber) {
    return js_string_to_number(a.str()) == b.number();
  }
  // Object against a primitive: compare the object's string form.
  if (ta == JsType::kObject) return js_loose_equals(Value::string(to_raw_string(a)), b);
  return js_loose_equals(a, Value::string(to_raw_string(b)));
}

// ---- UTF-8 ------------------------------------------------------------------------------------

char32_t decode_utf8(std::string_view s, size_t pos, size_t* length) {
  unsigned char c = static_cast<unsigned char>(s[pos]);
  *length = 1;
  if (c < 0x80) return c;
  size_t n = 0;
  char32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else
    return c;
  if (pos + n > s.size()) return c;
  for (size_t i = 1; i < n; ++i) {
    unsigned char cc = static_cast<unsigned char>(s[pos + i]);
    if ((cc & 0xC0) != 0x80) return c;
    cp = (cp << 6) | (cc & 0x3F);
  }
  *length = n;
  return cp;
}

std::vector<std::string> split_code_points(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 1;
    decode_utf8(s, i, &len);
    out.emplace_back(s.substr(i, len));
    i += len;
  }
  return out;
}

size_t utf16_length(std::string_view s) {
  size_t n = 0, i = 0;
  while (i < s.size()) {
    size_t len = 1;
    char32_t cp = decode_utf8(s, i, &len);
    n += cp >= 0x10000 ? 2 : 1;
    i += len;
  }
  return n;
}

bool is_js_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

size_t js_space_length_at(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  size_t len = 1;
  char32_t cp = decode_utf8(s, pos, &len);
  return is_js_space(cp) ? len : 0;
}

std::string_view js_trim_start(std::string_view s) {
  size_t i = 0;
  while (size_t len = js_space_length_at(s, i)) i += len;
  return s.substr(i);
}

std::string_view js_trim_end(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    // Step back to the start of the previous code point.
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && end - start < 4) {
      --start;
    }
    size_t len = 1;
    char32_t cp = decode_utf8(s, start, &len);
    if (start + len != end || !is_js_space(cp)) break;
    end = start;
  }
  return s.substr(0, end);
}

std::string_view js_trim(std::string_view s) {
  return js_trim_end(js_trim_start(s));
}

}  // namespace turbine::chat

#include "structured/json_types.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <set>
#include <vector>

#include "structured/json_fragments.h"

namespace turbine::structured::json {
namespace {

bool has_any(const Json& s, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (s.contains(k)) return true;
  }
  return false;
}

std::string pointer_unescape(const std::string& token) {
  std::string out;
  for (size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '~' && i + 1 < token.size() && (token[i + 1] == '0' || token[i + 1] == '1')) {
      out.push_back(token[i + 1] == '0' ? '~' : '/');
      ++i;
    } else if (token[i] == '%' && i + 2 < token.size() &&
               std::isxdigit(static_cast<unsigned char>(token[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(token[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(token.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(token[i]);
    }
  }
  return out;
}

const Json* follow_ref(const Json& root, const Json& s) {
  if (s.is_object() && s.contains("$ref") && s["$ref"].is_string()) {
    return resolve_pointer(root, s["$ref"].get<std::string>());
  }
  return &s;
}

// The serialized const/enum values a branch requires of property `name`, if it requires one.
std::optional<std::set<std::string>> discriminator_values(const Json& root, const Json& branch,
                                                          const std::string& name, int depth) {
  const Json* s = &branch;
  for (int hops = 0; s != nullptr && s->is_object() && s->contains("$ref") && hops < 32; ++hops) {
    s = follow_ref(root, *s);
  }
  if (depth > 32 || s == nullptr || !s->is_object()) return std::nullopt;
  const Json& b = *s;
  if (!b.contains("required") || !b["required"].is_array() ||
      std::find(b["required"].begin(), b["required"].end(), Json(name)) == b["required"].end() ||
      !b.contains("properties") || !b["properties"].is_object() ||
      !b["properties"].contains(name)) {
    return std::nullopt;
  }
  const Json& p = b["properties"][name];
  std::set<std::string> out;
  if (p.is_object() && p.contains("const")) {
    out.insert(serialize(p["const"]));
  } else if (p.is_object() && p.contains("enum") && p["enum"].is_array()) {
    for (const Json& v : p["enum"]) out.insert(serialize(v));
  } else {
    return std::nullopt;
  }
  return out;
}

}  // namespace

uint8_t value_type_bits(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return kNullBit;
    case Json::value_t::boolean: return kBoolBit;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return kIntBit;
    case Json::value_t::number_float: {
      const double d = v.get<double>();
      return std::floor(d) == d ? kIntBit : kFracBit;
    }
    case Json::value_t::string: return kStringBit;
    case Json::value_t::array: return kArrayBit;
    case Json::value_t::object: return kObjectBit;
    default: return 0;
  }
}

uint8_t type_name_bits(const std::string& t) {
  if (t == "null") return kNullBit;
  if (t == "boolean") return kBoolBit;
  if (t == "integer") return kIntBit;
  if (t == "number") return kIntBit | kFracBit;
  if (t == "string") return kStringBit;
  if (t == "array") return kArrayBit;
  if (t == "object") return kObjectBit;
  return 0;
}

bool has_object_keywords(const Json& s) {
  return has_any(s, {"properties", "required", "additionalProperties"});
}
bool has_array_keywords(const Json& s) {
  return has_any(
      s, {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems"});
}
bool has_string_keywords(const Json& s) {
  return has_any(s, {"minLength", "maxLength", "pattern", "format"});
}
bool has_number_keywords(const Json& s) {
  return has_any(s, {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"});
}

const Json* resolve_pointer(const Json& root, const std::string& ref) {
  if (ref == "#") return &root;
  if (ref.rfind("#/", 0) != 0) return nullptr;
  const Json* cur = &root;
  size_t pos = 2;
  while (cur != nullptr) {
    const size_t slash = ref.find('/', pos);
    const std::string token = pointer_unescape(
        ref.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos));
    if (cur->is_object() && cur->contains(token)) {
      cur = &(*cur)[token];
    } else if (cur->is_array() && !token.empty() &&
               token.find_first_not_of("0123456789") == std::string::npos && token.size() < 9 &&
               std::stoul(token) < cur->size()) {
      cur = &(*cur)[std::stoul(token)];
    } else {
      cur = nullptr;
    }
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return cur;
}

uint8_t possible_types(const Json& root, const Json& s, int depth) {
  if (depth > 32) return kAllBits;
  if (s.is_boolean()) return s.get<bool>() ? kAllBits : 0;
  if (!s.is_object()) return kAllBits;
  if (s.contains("$ref")) {
    const Json* t = follow_ref(root, s);
    return t == nullptr ? kAllBits : possible_types(root, *t, depth + 1);
  }
  for (const char* comb : {"anyOf", "oneOf", "allOf"}) {
    if (s.contains(comb) && s[comb].is_array()) {
      uint8_t bits = 0;
      for (const Json& x : s[comb]) bits |= possible_types(root, x, depth + 1);
      return bits;
    }
  }
  uint8_t bits = 0;
  if (s.contains("const")) return value_type_bits(s["const"]);
  if (s.contains("enum") && s["enum"].is_array()) {
    for (const Json& v : s["enum"]) bits |= value_type_bits(v);
    return bits;
  }
  if (s.contains("type")) {
    const Json& t = s["type"];
    if (t.is_string()) return type_name_bits(t.get<std::string>());
    if (t.is_array()) {
      for (const Json& x : t) bits |= x.is_string() ? type_name_bits(x.get<std::string>()) : 0;
      return bits;
    }
  }
  if (has_object_keywords(s)) bits |= kObjectBit;
  if (has_array_keywords(s)) bits |= kArrayBit;
  if (has_string_keywords(s)) bits |= kStringBit;
  if (has_number_keywords(s)) bits |= kIntBit | kFracBit;
  return bits == 0 ? kAllBits : bits;
}

bool provably_exclusive(const Json& root, const Json& branches) {
  std::vector<uint8_t> bits;
  for (const Json& x : branches) bits.push_back(possible_types(root, x));
  bool disjoint = true;
  for (size_t i = 0; i < bits.size() && disjoint; ++i) {
    for (size_t j = i + 1; j < bits.size(); ++j) {
      if (bits[i] & bits[j]) disjoint = false;
    }
  }
  if (disjoint) return true;
  std::set<std::string> candidates;
  const Json* first = branches.empty() ? nullptr : follow_ref(root, branches[0]);
  if (first != nullptr && first->is_object() && first->contains("properties") &&
      (*first)["properties"].is_object()) {
    for (const auto& item : (*first)["properties"].items()) candidates.insert(item.key());
  }
  for (const std::string& name : candidates) {
    std::set<std::string> seen;
    bool good = true;
    for (const Json& x : branches) {
      auto values = discriminator_values(root, x, name, 0);
      if (!values) {
        good = false;
        break;
      }
      for (const std::string& v : *values) {
        if (!seen.insert(v).second) good = false;
      }
      if (!good) break;
    }
    if (good) return true;
  }
  return false;
}

}  // namespace turbine::structured::json

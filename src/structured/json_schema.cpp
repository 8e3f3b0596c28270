#include "structured/json_schema.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "structured/json_fragments.h"
#include "structured/json_types.h"
#include "structured/regex.h"

namespace turbine::structured {
namespace {

using json::Json;

// JSON types as bits, for oneOf exclusivity.
const std::set<std::string>& annotations() {
  // Keywords that describe without constraining (OpenAPI's discriminator only names the property
  // that tells oneOf branches apart; exclusivity itself is checked).
  static const std::set<std::string> k = {
      "title", "description", "examples",      "default",         "$schema",
      "$id",   "$comment",    "deprecated",    "readOnly",        "writeOnly",
      "$defs", "definitions", "discriminator", "contentEncoding", "contentMediaType"};
  return k;
}

const std::set<std::string>& supported() {
  static const std::set<std::string> k = {"type",
                                          "properties",
                                          "required",
                                          "additionalProperties",
                                          "enum",
                                          "const",
                                          "anyOf",
                                          "oneOf",
                                          "allOf",
                                          "$ref",
                                          "items",
                                          "prefixItems",
                                          "additionalItems",
                                          "minItems",
                                          "maxItems",
                                          "uniqueItems",
                                          "pattern",
                                          "format",
                                          "minLength",
                                          "maxLength",
                                          "minimum",
                                          "maximum",
                                          "exclusiveMinimum",
                                          "exclusiveMaximum"};
  return k;
}

bool is_annotation(const std::string& key) {
  return annotations().count(key) != 0 || key.rfind("x-", 0) == 0;
}

class SchemaCompiler {
 public:
  SchemaCompiler(const Json& root, const JsonGrammarOptions& o, const CompileLimits& l)
      : root_(root), opts_(o), limits_(l), budget_{l.max_nfa_states, Status::ok()} {}

  Result<Grammar> run() {
    const int32_t root = g_.add_rule("root");
    g_.set_root(root);
    rules_[&root_] = root;
    pending_.push_back({root, &root_, ""});
    while (!pending_.empty() && ok()) {
      const Pending p = pending_.back();
      pending_.pop_back();
      NfaBuilder b(&budget_);
      Frag f;
      if (p.schema == nullptr) {
        f = json::any_value(b, p.rule, opts_);
      } else {
        f = schema(b, *p.schema, p.path, 0);
      }
      g_.set_body(p.rule, b.finish(f));
      if (g_.rules().size() > limits_.max_rules) {
        fail("", "the schema needs more than " + std::to_string(limits_.max_rules) + " rules");
      }
    }
    if (!budget_.status.is_ok()) return budget_.status;
    if (!status_.is_ok()) return status_;
    return std::move(g_);
  }

 private:
  struct Pending {
    int32_t rule;
    const Json* schema;  // nullptr: the any-value rule
    std::string path;
  };

  bool ok() const { return status_.is_ok() && budget_.status.is_ok(); }

  void fail(const std::string& path, const std::string& what) {
    if (status_.is_ok()) {
      status_ = invalid_argument("JSON schema " +
                                 (path.empty() ? std::string("at the root") : "at " + path) + ": " +
                                 what);
    }
  }

  int32_t any_rule() {
    if (any_rule_ < 0) {
      any_rule_ = g_.add_rule("any_value");
      pending_.push_back({any_rule_, nullptr, ""});
    }
    return any_rule_;
  }

  int32_t rule_for(const Json* s, const std::string& path) {
    auto it = rules_.find(s);
    if (it != rules_.end()) return it->second;
    const int32_t r = g_.add_rule(path.empty() ? "root" : path);
    rules_[s] = r;
    pending_.push_back({r, s, path});
    return r;
  }

  const Json* resolve(const std::string& ref, const std::string& path) {
    if (ref != "#" && ref.rfind("#/", 0) != 0) {
      fail(path, "$ref '" + ref + "' is not supported (only local references '#/...')");
      return nullptr;
    }
    const Json* target = json::resolve_pointer(root_, ref);
    if (target == nullptr) fail(path, "$ref '" + ref + "' does not resolve");
    return target;
  }

  // Keys of `s` that constrain (neither annotations nor `allowed`).
  std::vector<std::string> enforcing_keys(const Json& s,
                                          std::initializer_list<const char*> allowed) {
    std::vector<std::string> out;
    for (const auto& item : s.items()) {
      const std::string& k = item.key();
      if (is_annotation(k)) continue;
      if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; }) !=
          allowed.end()) {
        continue;
      }
      out.push_back(k);
    }
    return out;
  }

  Frag schema(NfaBuilder& b, const Json& s, const std::string& path, int depth) {
    if (!ok()) return b.empty();
    if (depth > limits_.max_nesting_depth) {
      fail(path, "schemas nested deeper than " + std::to_string(limits_.max_nesting_depth));
      return b.empty();
    }
    if (s.is_boolean()) {
      if (s.get<bool>()) return b.rule_ref(any_rule());
      fail(path, "the schema is false: no value can match");
      return b.empty();
    }
    if (!s.is_object()) {
      fail(path, "a schema must be an object or a boolean");
      return b.empty();
    }
    for (const auto& [k, v] : s.items()) {
      if (!is_annotation(k) && supported().count(k) == 0) {
        fail(path, "unsupported keyword '" + k + "'");
        return b.empty();
      }
    }
    if (s.contains("uniqueItems") && s["uniqueItems"] != false) {
      fail(path, "unsupported keyword 'uniqueItems' (only false can be enforced)");
      return b.empty();
    }
    if (s.contains("$ref")) {
      const auto extra = enforcing_keys(s, {"$ref"});
      if (!extra.empty()) {
        fail(path, "keyword '" + extra[0] + "' next to $ref is not supported");
        return b.empty();
      }
      if (!s["$ref"].is_string()) {
        fail(path, "$ref must be a string");
        return b.empty();
      }
      const Json* target = resolve(s["$ref"].get<std::string>(), path);
      if (target == nullptr) return b.empty();
      return b.rule_ref(rule_for(target, path + "/$ref"));
    }
    for (const char* comb : {"allOf", "anyOf", "oneOf"}) {
      if (!s.contains(comb)) continue;
      const Json& list = s[comb];
      if (!list.is_array() || list.empty()) {
        fail(path, std::string(comb) + " must be a non-empty array of schemas");
        return b.empty();
      }
      const auto extra = enforcing_keys(s, {comb});
      if (!extra.empty()) {
        fail(path, "keyword '" + extra[0] + "' next to " + comb + " is not supported");
        return b.empty();
      }
      const std::string sub = path + "/" + comb + "/";
      if (std::string(comb) == "allOf") {
        if (list.size() != 1) {
          fail(path, "allOf with more than one schema is not supported");
          return b.empty();
        }
        return schema(b, list[0], sub + "0", depth + 1);
      }
      if (std::string(comb) == "oneOf" && !exclusive(list, path)) return b.empty();
      std::vector<Frag> alts;
      for (size_t i = 0; i < list.size(); ++i) {
        if (list[i] == false) continue;  // never matches: drop the branch
        alts.push_back(schema(b, list[i], sub + std::to_string(i), depth + 1));
      }
      if (alts.empty()) fail(path, std::string(comb) + " has no satisfiable branch");
      return b.alt(alts);
    }
    if (s.contains("enum") || s.contains("const")) return enum_or_const(b, s, path);

    std::vector<std::string> types;
    if (s.contains("type")) {
      const Json& t = s["type"];
      if (t.is_string()) {
        types.push_back(t.get<std::string>());
      } else if (t.is_array() && !t.empty()) {
        for (const Json& x : t) {
          if (!x.is_string()) {
            fail(path, "type must be a string or an array of strings");
            return b.empty();
          }
          types.push_back(x.get<std::string>());
        }
      } else {
        fail(path, "type must be a string or a non-empty array of strings");
        return b.empty();
      }
    } else {
      // No type: generate only the types whose keywords appear (a valid subset), else anything.
      if (json::has_object_keywords(s)) types.push_back("object");
      if (json::has_array_keywords(s)) types.push_back("array");
      if (json::has_string_keywords(s)) types.push_back("string");
      if (json::has_number_keywords(s)) types.push_back("number");
      if (types.empty()) return b.rule_ref(any_rule());
    }
    std::vector<Frag> alts;
    for (const std::string& t : types) alts.push_back(typed(b, s, t, path, depth));
    if (alts.size() == 1) return alts[0];
    return b.alt(alts);
  }

  Frag typed(NfaBuilder& b, const Json& s, const std::string& t, const std::string& path,
             int depth) {
    if (t == "null") return b.literal("null");
    if (t == "boolean") return b.alt({b.literal("true"), b.literal("false")});
    if (t == "integer" || t == "number") return numeric(b, s, t == "integer", path);
    if (t == "string") return string(b, s, path);
    if (t == "array") return array(b, s, path, depth);
    if (t == "object") return object(b, s, path, depth);
    fail(path, "unknown type '" + t + "'");
    return b.empty();
  }

  // A non-negative integer keyword, or `fallback` if absent; fails on anything else.
  int count_keyword(const Json& s, const char* key, int fallback, const std::string& path) {
    if (!s.contains(key)) return fallback;
    const Json& v = s[key];
    if (!v.is_number() || v.get<double>() < 0 || std::floor(v.get<double>()) != v.get<double>()) {
      fail(path, std::string(key) + " must be a non-negative integer");
      return fallback;
    }
    if (v.get<double>() > limits_.max_repeat) {
      fail(path, std::string(key) + " " + v.dump() + " is above the limit of " +
                     std::to_string(limits_.max_repeat));
      return fallback;
    }
    return static_cast<int>(v.get<double>());
  }

  Frag numeric(NfaBuilder& b, const Json& s, bool integer, const std::string& path) {
    std::optional<double> lo, hi;
    bool lo_excl = false, hi_excl = false;
    const auto bound = [&](const char* key) -> std::optional<double> {
      if (!s.contains(key) || s[key].is_boolean()) return std::nullopt;
      if (!s[key].is_number()) {
        fail(path, std::string(key) + " must be a number");
        return std::nullopt;
      }
      return s[key].get<double>();
    };
    lo = bound("minimum");
    hi = bound("maximum");
    // Draft 4 spells exclusivity as a boolean next to minimum/maximum.
    if (s.contains("exclusiveMinimum") && s["exclusiveMinimum"].is_boolean()) {
      lo_excl = s["exclusiveMinimum"].get<bool>() && lo;
    } else if (auto x = bound("exclusiveMinimum"); x && (!lo || *x >= *lo)) {
      lo = x;
      lo_excl = true;
    }
    if (s.contains("exclusiveMaximum") && s["exclusiveMaximum"].is_boolean()) {
      hi_excl = s["exclusiveMaximum"].get<bool>() && hi;
    } else if (auto x = bound("exclusiveMaximum"); x && (!hi || *x <= *hi)) {
      hi = x;
      hi_excl = true;
    }
    if (!ok()) return b.empty();
    if (!lo && !hi) return integer ? json::integer(b) : json::number(b);
    if (lo && hi && (*lo > *hi || (*lo == *hi && (lo_excl || hi_excl)))) {
      fail(path, "minimum is above maximum: no number can match");
      return b.empty();
    }
    Result<std::unique_ptr<Expr>> e = [&]() -> Result<std::unique_ptr<Expr>> {
      if (!integer) return json::number_range(lo, lo_excl, hi, hi_excl);
      // Bounds beyond +-1e18 do not fit the digits we generate: a huge minimum is an error (from
      // integer_range), a huge negative minimum (or positive maximum) is no bound at all.
      constexpr double kHuge = 1e18;
      if (lo && *lo > kHuge)
        return invalid_argument("minimum is above 1e18, too large to generate");
      if (hi && *hi < -kHuge)
        return invalid_argument("maximum is below -1e18, too small to generate");
      std::optional<int64_t> ilo, ihi;
      if (lo && *lo >= -kHuge) {
        ilo = static_cast<int64_t>(lo_excl ? std::floor(*lo) + 1 : std::ceil(*lo));
      }
      if (hi && *hi <= kHuge) {
        ihi = static_cast<int64_t>(hi_excl ? std::ceil(*hi) - 1 : std::floor(*hi));
      }
      return json::integer_range(ilo, ihi);
    }();
    if (!e.has_value()) {
      fail(path, e.status().message());
      return b.empty();
    }
    return lower(b, **e, Encoding::kRaw);
  }

  Frag string(NfaBuilder& b, const Json& s, const std::string& path) {
    const bool has_length = s.contains("minLength") || s.contains("maxLength");
    const int families =
        (s.contains("pattern") ? 1 : 0) + (s.contains("format") ? 1 : 0) + (has_length ? 1 : 0);
    if (families > 1) {
      fail(path, "combining pattern, format and minLength/maxLength is not supported");
      return b.empty();
    }
    std::unique_ptr<Expr> e;
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) {
        fail(path, "pattern must be a string");
        return b.empty();
      }
      auto r = parse_regex(s["pattern"].get<std::string>(), RegexMode::kSearch, limits_);
      if (!r.has_value()) {
        fail(path + "/pattern", r.status().message());
        return b.empty();
      }
      e = std::move(*r);
    } else if (s.contains("format")) {
      if (!s["format"].is_string()) {
        fail(path, "format must be a string");
        return b.empty();
      }
      auto r = json::format(s["format"].get<std::string>(), limits_);
      if (!r.has_value()) {
        fail(path, r.status().message());
        return b.empty();
      }
      e = std::move(*r);
    } else if (has_length) {
      const int min = count_keyword(s, "minLength", 0, path);
      const int max = count_keyword(s, "maxLength", -1, path);
      if (max >= 0 && min > max) {
        fail(path, "minLength is above maxLength: no string can match");
        return b.empty();
      }
      return json::string_length(b, min, max);
    } else {
      return json::plain_string(b);
    }
    Frag f = b.literal("\"");
    f = b.seq(f, lower(b, *e, Encoding::kJsonString));
    return b.seq(f, b.literal("\""));
  }

  // An element generator that inlines `schema` while that stays small, then switches to a rule.
  // Inline copies make tokens that span two elements decidable ahead of time, but each copy's
  // states cost their own token-mask precomputation; past kInlineStates duplicated NFA states a
  // shared rule is cheaper.
  static constexpr size_t kInlineStates = 1024;
  struct ItemGen {
    SchemaCompiler* c;
    const Json* schema;
    std::string path;
    int depth;
    int copies_left;  // copies still to build after this one
    int32_t rule = -1;
    Frag next(NfaBuilder& b) {
      if (rule >= 0) return b.rule_ref(rule);
      const size_t before = c->budget_.states_left;
      const Frag f = c->schema(b, *schema, path, depth);
      const size_t used = before - c->budget_.states_left;
      if (used * static_cast<size_t>(std::max(copies_left, 0)) > kInlineStates) {
        rule = c->rule_for(schema, path);
      }
      --copies_left;
      return f;
    }
  };

  Frag array(NfaBuilder& b, const Json& s, const std::string& path, int depth) {
    const Json* prefix = nullptr;
    const Json* items = nullptr;
    std::string items_path = path + "/items";
    if (s.contains("prefixItems")) prefix = &s["prefixItems"];
    if (s.contains("items")) {
      if (s["items"].is_array() && prefix == nullptr) {  // draft 4 tuple form
        prefix = &s["items"];
        if (s.contains("additionalItems")) {
          items = &s["additionalItems"];
          items_path = path + "/additionalItems";
        }
      } else {
        items = &s["items"];
      }
    }
    if (prefix != nullptr && !prefix->is_array()) {
      fail(path, "prefixItems must be an array of schemas");
      return b.empty();
    }
    int min = count_keyword(s, "minItems", 0, path);
    int max = count_keyword(s, "maxItems", -1, path);
    int n_prefix = prefix == nullptr ? 0 : static_cast<int>(prefix->size());
    for (int k = 0; k < n_prefix; ++k) {
      if ((*prefix)[static_cast<size_t>(k)] == false) {
        n_prefix = k;  // no element can be at position k
        max = max < 0 ? k : std::min(max, k);
      }
    }
    const bool items_false = items != nullptr && *items == false;
    if (items_false) max = max < 0 ? n_prefix : std::min(max, n_prefix);
    if (!ok()) return b.empty();
    if (max >= 0 && min > max) {
      fail(path, "minItems is above what maxItems, prefixItems and items allow: no array matches");
      return b.empty();
    }
    static const Json kAny = true;
    const Json* item_schema = items == nullptr ? &kAny : items;
    const int unrolled = max >= 0 ? max : std::max(min, n_prefix);
    ItemGen gen{this, item_schema, items_path, depth + 1,
                std::max(0, unrolled - n_prefix) + (max < 0 ? 1 : 0) - 1};
    const auto element = [&](int k) {
      if (k < n_prefix) {
        return schema(b, (*prefix)[static_cast<size_t>(k)],
                      path + "/prefixItems/" + std::to_string(k), depth + 1);
      }
      return gen.next(b);
    };
    const Frag open = b.seq(b.literal("["), ws(b));
    const int32_t end = b.new_state();
    if (min == 0) {
      const Frag close = b.literal("]");
      b.add_epsilon(open.end, close.start);
      b.add_epsilon(close.end, end);
    }
    if (max == 0) return {open.start, end};
    int32_t cur = open.end;  // after k elements (k = 0: no separator before the element)
    for (int k = 0; k < unrolled && ok(); ++k) {
      Frag e = element(k);
      if (k > 0) e = b.seq(b.seq(b.literal(","), ws(b)), e);
      b.add_epsilon(cur, e.start);
      cur = e.end;
      if (k + 1 >= min) {
        const Frag close = b.seq(ws(b), b.literal("]"));
        b.add_epsilon(cur, close.start);
        b.add_epsilon(close.end, end);
      }
    }
    if (max < 0) {  // any number of further items
      if (unrolled == 0) {
        // [ item ("," item)* ]: the first item has no separator.
        const Frag first_item = element(0);
        b.add_epsilon(cur, first_item.start);
        cur = first_item.end;
        const Frag close = b.seq(ws(b), b.literal("]"));
        b.add_epsilon(cur, close.start);
        b.add_epsilon(close.end, end);
      }
      const Frag more = b.seq(b.seq(b.literal(","), ws(b)), element(std::max(unrolled, 1)));
      b.add_epsilon(cur, more.start);
      b.add_epsilon(more.end, cur);
    }
    return {open.start, end};
  }

  Frag ws(NfaBuilder& b) { return json::ws(b, opts_); }

  Frag object(NfaBuilder& b, const Json& s, const std::string& path, int depth) {
    struct Prop {
      std::string name;
      const Json* schema;
      std::string path;
      bool required;
    };
    static const Json kAny = true;
    std::vector<Prop> props;
    std::vector<std::string> names;
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) {
        fail(path, "required must be an array of strings");
        return b.empty();
      }
      for (const Json& r : s["required"]) {
        if (!r.is_string()) {
          fail(path, "required must be an array of strings");
          return b.empty();
        }
        required.insert(r.get<std::string>());
      }
    }
    const Json* additional =
        s.contains("additionalProperties") ? &s["additionalProperties"] : nullptr;
    const bool extras = additional != nullptr && *additional != false;
    if (s.contains("properties")) {
      if (!s["properties"].is_object()) {
        fail(path, "properties must be an object");
        return b.empty();
      }
      for (const auto& [name, sub] : s["properties"].items()) {
        names.push_back(name);
        const bool req = required.count(name) != 0;
        if (sub == false) {
          if (req) fail(path, "required property '" + name + "' has the schema false");
          continue;
        }
        props.push_back({name, &sub, path + "/properties/" + name, req});
      }
    }
    for (const std::string& r : required) {
      if (std::find(names.begin(), names.end(), r) != names.end()) continue;
      if (additional != nullptr && *additional == false) {
        fail(path, "required property '" + r + "' is not allowed by additionalProperties: false");
        return b.empty();
      }
      names.push_back(r);
      props.push_back(
          {r, additional != nullptr ? additional : &kAny, path + "/additionalProperties", true});
    }
    if (!ok()) return b.empty();
    const Frag open = b.seq(b.literal("{"), ws(b));
    const int32_t end = b.new_state();
    // empty_state: nothing emitted yet (only while every property so far was optional);
    // filled: at least one property emitted.
    int32_t empty_state = open.end;
    int32_t filled = -1;
    for (const Prop& p : props) {
      Frag pf = b.seq(b.literal(json::quote(p.name)), b.seq(b.literal(":"), ws(b)));
      pf = b.seq(pf, schema(b, *p.schema, p.path, depth + 1));
      const int32_t next_filled = b.new_state();
      if (empty_state >= 0) b.add_epsilon(empty_state, pf.start);
      if (filled >= 0) {
        const Frag sep = b.seq(b.literal(","), ws(b));
        b.add_epsilon(filled, sep.start);
        b.add_epsilon(sep.end, pf.start);
        if (!p.required) b.add_epsilon(filled, next_filled);
      }
      b.add_epsilon(pf.end, next_filled);
      if (p.required) empty_state = -1;
      filled = next_filled;
    }
    if (extras) {
      Frag x = b.seq(json::string_excluding(b, names), b.seq(b.literal(":"), ws(b)));
      x = b.seq(x, schema(b, *additional, path + "/additionalProperties", depth + 1));
      if (filled < 0) filled = b.new_state();
      if (empty_state >= 0) b.add_epsilon(empty_state, x.start);
      const Frag sep = b.seq(b.literal(","), ws(b));
      b.add_epsilon(filled, sep.start);
      b.add_epsilon(sep.end, x.start);
      b.add_epsilon(x.end, filled);
    }
    if (empty_state >= 0) {
      const Frag close = b.literal("}");
      b.add_epsilon(empty_state, close.start);
      b.add_epsilon(close.end, end);
    }
    if (filled >= 0) {
      const Frag close = b.seq(ws(b), b.literal("}"));
      b.add_epsilon(filled, close.start);
      b.add_epsilon(close.end, end);
    }
    return {open.start, end};
  }

  Frag enum_or_const(NfaBuilder& b, const Json& s, const std::string& path) {
    const auto extra = enforcing_keys(s, {"enum", "const", "type"});
    if (!extra.empty()) {
      fail(path, "keyword '" + extra[0] + "' next to enum/const is not supported");
      return b.empty();
    }
    std::vector<const Json*> values;
    if (s.contains("enum")) {
      if (!s["enum"].is_array() || s["enum"].empty()) {
        fail(path, "enum must be a non-empty array");
        return b.empty();
      }
      for (const Json& v : s["enum"]) {
        if (!s.contains("const") || v == s["const"]) values.push_back(&v);
      }
    } else {
      values.push_back(&s["const"]);
    }
    uint8_t allowed = json::kAllBits;
    if (s.contains("type")) {
      allowed = 0;
      const Json& t = s["type"];
      if (t.is_string()) allowed = json::type_name_bits(t.get<std::string>());
      if (t.is_array()) {
        for (const Json& x : t)
          allowed |= x.is_string() ? json::type_name_bits(x.get<std::string>()) : 0;
      }
    }
    std::vector<Frag> alts;
    for (const Json* v : values) {
      if (json::value_type_bits(*v) & allowed) alts.push_back(b.literal(json::serialize(*v)));
    }
    if (alts.empty()) {
      fail(path, "no enum/const value satisfies the schema's type");
      return b.empty();
    }
    return b.alt(alts);
  }

  // oneOf is compiled as anyOf, which is only right when no value can match two branches.
  bool exclusive(const Json& list, const std::string& path) {
    if (json::provably_exclusive(root_, list)) return true;
    fail(path,
         "oneOf branches may overlap, so exactly-one cannot be enforced (use anyOf, distinct "
         "types, or a required property with distinct const values)");
    return false;
  }

  const Json& root_;
  JsonGrammarOptions opts_;
  const CompileLimits& limits_;
  Grammar g_;
  NfaBuilder::Budget budget_;
  std::vector<Pending> pending_;
  std::map<const Json*, int32_t> rules_;
  int32_t any_rule_ = -1;
  Status status_;
};

Result<Json> parse_json(std::string_view text, const CompileLimits& limits, const char* what) {
  if (text.size() > limits.max_input_bytes) {
    return invalid_argument(std::string(what) + " is longer than " +
                            std::to_string(limits.max_input_bytes) + " bytes");
  }
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    return invalid_argument(std::string(what) + " is not valid JSON: " + e.what());
  }
}

}  // namespace

Result<Grammar> json_schema_to_grammar(std::string_view schema_json,
                                       const JsonGrammarOptions& options,
                                       const CompileLimits& limits) {
  TURBINE_ASSIGN_OR_RETURN(Json schema, parse_json(schema_json, limits, "the JSON schema"));
  SchemaCompiler c(schema, options, limits);
  return c.run();
}

Result<Grammar> json_object_grammar(const JsonGrammarOptions& options,
                                    const CompileLimits& limits) {
  Grammar g;
  const int32_t root = g.add_rule("root");
  const int32_t value = g.add_rule("any_value");
  NfaBuilder::Budget budget{limits.max_nfa_states, Status::ok()};
  {
    NfaBuilder b(&budget);
    const Frag f = json::any_object(b, value, options);
    g.set_body(root, b.finish(f));
  }
  {
    NfaBuilder b(&budget);
    const Frag f = json::any_value(b, value, options);
    g.set_body(value, b.finish(f));
  }
  if (!budget.status.is_ok()) return budget.status;
  g.set_root(root);
  return g;
}

Result<Grammar> choice_to_grammar(std::string_view choices_json, const CompileLimits& limits) {
  TURBINE_ASSIGN_OR_RETURN(Json list, parse_json(choices_json, limits, "the choice list"));
  if (!list.is_array() || list.empty()) {
    return invalid_argument("choice must be a non-empty array of strings");
  }
  Grammar g;
  const int32_t root = g.add_rule("root");
  NfaBuilder::Budget budget{limits.max_nfa_states, Status::ok()};
  NfaBuilder b(&budget);
  std::vector<Frag> alts;
  for (const Json& c : list) {
    if (!c.is_string()) return invalid_argument("choice must be a non-empty array of strings");
    alts.push_back(b.literal(c.get<std::string>()));
  }
  const Frag f = b.alt(alts);
  if (!budget.status.is_ok()) return budget.status;
  g.set_body(root, b.finish(f));
  g.set_root(root);
  return g;
}

}  // namespace turbine::structured

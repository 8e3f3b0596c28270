// JSON Schema analysis helpers for the compiler (internal to json_schema.cpp): JSON types as bit
// sets, keyword families, local $ref resolution, and the check that oneOf branches cannot both
// match a value (so compiling oneOf as anyOf stays exact).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace turbine::structured::json {

using Json = nlohmann::ordered_json;

inline constexpr uint8_t kNullBit = 1;
inline constexpr uint8_t kBoolBit = 2;
inline constexpr uint8_t kIntBit = 4;
inline constexpr uint8_t kFracBit = 8;  // numbers that are not integers
inline constexpr uint8_t kStringBit = 16;
inline constexpr uint8_t kArrayBit = 32;
inline constexpr uint8_t kObjectBit = 64;
inline constexpr uint8_t kAllBits = 127;

uint8_t value_type_bits(const Json& v);
uint8_t type_name_bits(const std::string& type);  // "number" is kIntBit | kFracBit; unknown: 0

bool has_object_keywords(const Json& s);
bool has_array_keywords(const Json& s);
bool has_string_keywords(const Json& s);
bool has_number_keywords(const Json& s);

// "#" or a JSON pointer "#/a/b~1c/0" (percent-decoded) into `root`; nullptr if it does not
// resolve.
const Json* resolve_pointer(const Json& root, const std::string& ref);

// The JSON types a schema can produce (all when unknown).
uint8_t possible_types(const Json& root, const Json& s, int depth = 0);

// No value matches two of the branches: their possible types are disjoint, or every branch
// requires one property with const/enum values that no other branch allows.
bool provably_exclusive(const Json& root, const Json& branches);

}  // namespace turbine::structured::json

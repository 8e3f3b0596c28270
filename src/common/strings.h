// Small string helpers shared by modules (ASCII only: HTTP header names, tokens).
#pragma once

#include <cctype>
#include <string_view>

namespace turbine {

// ASCII case-insensitive equality (HTTP header names and values such as "100-continue").
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace turbine

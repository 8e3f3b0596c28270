#include "semantic/text.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace turbine::semantic {
namespace {

// Length of the valid UTF-8 sequence at s[i], 0 when invalid.
size_t utf8_len(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

void append_go_json_string(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '<':
        case '>':
        case '&':
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
          break;
        default:
          if (c < 0x20) {
            out += "\\u00";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    size_t n = utf8_len(s, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (n == 3 && c == 0xE2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(s[i + 2]) == 0xA8 ||
         static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
      out += static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  out.push_back('"');
}

std::string go_json_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_go_json_string(out, s);
  return out;
}

std::vector<std::string> extract_literals(std::string_view t) {
  std::vector<std::string> out;
  auto is_op = [](char c) {
    return c == '+' || c == '-' || c == '*' || c == '/' || c == '^' || c == '%' || c == '=' ||
           c == '<' || c == '>' || c == 'x';
  };
  size_t i = 0;
  while (i < t.size()) {
    char c = t[i];
    if (c == '"' || c == '`') {
      size_t close = t.find(c, i + 1);
      if (close != std::string_view::npos && close - i <= 256) {
        out.push_back(std::string(1, c) + std::string(t.substr(i + 1, close - i - 1)));
        i = close + 1;
        continue;
      }
      ++i;
      continue;
    }
    if (!is_digit(c)) {
      ++i;
      continue;
    }
    // A number, then (op number)* with optional spaces: one literal per expression.
    std::string lit;
    if (i > 0 && t[i - 1] == '-' && (i < 2 || !is_digit(t[i - 2]))) lit.push_back('-');
    size_t p = i;
    for (;;) {
      while (p < t.size() && (is_digit(t[p]) || ((t[p] == '.' || t[p] == ',') && p + 1 < t.size() &&
                                                 is_digit(t[p + 1])))) {
        if (t[p] != ',') lit.push_back(t[p]);  // "1,000" == "1000"
        ++p;
      }
      size_t q = p;
      while (q < t.size() && t[q] == ' ') ++q;
      if (q < t.size() && is_op(t[q])) {
        size_t r = q + 1;
        while (r < t.size() && t[r] == ' ') ++r;
        if (r < t.size() && is_digit(t[r])) {
          lit.push_back(t[q]);
          p = r;
          continue;
        }
      }
      break;
    }
    out.push_back(std::move(lit));
    i = p;
  }
  std::sort(out.begin(), out.end());
  return out;
}

Fingerprint& Fingerprint::add(std::string_view field) {
  uint64_t n = field.size();
  buf_.append(reinterpret_cast<const char*>(&n), sizeof(n));
  buf_.append(field);
  return *this;
}

std::string Fingerprint::digest() const {
  XXH128_hash_t h = XXH3_128bits(buf_.data(), buf_.size());
  std::string out(16, '\0');
  std::memcpy(out.data(), &h.high64, 8);
  std::memcpy(out.data() + 8, &h.low64, 8);
  return out;
}

}  // namespace turbine::semantic

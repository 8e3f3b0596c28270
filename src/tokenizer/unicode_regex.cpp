#include "tokenizer/unicode_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <vector>

namespace turbine::tokenizer {
namespace {

// Unicode White_Space, as Oniguruma's \s (PCRE2's UCP \s lacks U+0085).
constexpr std::string_view kWhiteSpaceItems = "\\x{9}-\\x{D}\\x{85}\\p{Z}";

bool is_ascii_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
char other_case(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : static_cast<char>(c + 32);
}

// Length of the escape starting at p[i] == '\\' (including braces of \p{..} and \x{..}).
size_t escape_length(std::string_view p, size_t i) {
  if (i + 1 >= p.size()) return 1;
  const char k = p[i + 1];
  if ((k == 'p' || k == 'P' || k == 'x') && i + 2 < p.size() && p[i + 2] == '{') {
    const size_t close = p.find('}', i + 3);
    if (close != std::string_view::npos) return close - i + 1;
  }
  if (k == 'p' || k == 'P') return i + 2 < p.size() ? 3 : 2;  // \pL
  return 2;
}

// Copies a character class starting at p[i] == '[' into `out`; returns the index after it.
size_t translate_class(std::string_view p, size_t i, bool fold, std::string& out) {
  out.push_back('[');
  ++i;
  if (i < p.size() && p[i] == '^') out.push_back(p[i++]);
  if (i < p.size() && p[i] == ']') out.append("\\]"), ++i;  // a leading ] is literal
  while (i < p.size() && p[i] != ']') {
    const char c = p[i];
    if (c == '\\') {
      const size_t n = escape_length(p, i);
      const std::string_view esc = p.substr(i, n);
      if (esc == "\\s") {
        out.append(kWhiteSpaceItems);
      } else if (esc == "\\d") {
        out.append("\\p{Nd}");
      } else if (esc == "\\D") {
        out.append("\\P{Nd}");
      } else {
        out.append(esc);
      }
      i += n;
      continue;
    }
    if (c == '[') {
      if (p.substr(i, 2) == "[:") {  // POSIX class: copy through ":]"
        const size_t close = p.find(":]", i + 2);
        if (close != std::string_view::npos) {
          out.append(p.substr(i, close + 2 - i));
          i = close + 2;
          continue;
        }
      }
      out.append("\\[");
      ++i;
      continue;
    }
    if (fold && is_ascii_letter(c)) {
      if (i + 2 < p.size() && p[i + 1] == '-' && is_ascii_letter(p[i + 2])) {
        out.append(p.substr(i, 3));
        out.push_back(other_case(c));
        out.push_back('-');
        out.push_back(other_case(p[i + 2]));
        i += 3;
      } else {
        out.push_back(c);
        out.push_back(other_case(c));
        ++i;
      }
      continue;
    }
    out.push_back(c);
    ++i;
  }
  out.push_back(']');
  return i < p.size() ? i + 1 : i;
}

struct ThreadMatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ThreadMatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (context != nullptr && jit_stack != nullptr)
      pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~ThreadMatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

ThreadMatchState& match_state() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

std::string translate_oniguruma_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 32);
  std::vector<bool> fold_stack;
  bool fold = false;
  size_t i = 0;
  while (i < p.size()) {
    const char c = p[i];
    if (c == '\\') {
      const size_t n = escape_length(p, i);
      const std::string_view esc = p.substr(i, n);
      if (esc == "\\s") {
        out.append("[").append(kWhiteSpaceItems).append("]");
      } else if (esc == "\\S") {
        out.append("[^").append(kWhiteSpaceItems).append("]");
      } else if (esc == "\\d") {
        out.append("\\p{Nd}");
      } else if (esc == "\\D") {
        out.append("\\P{Nd}");
      } else {
        out.append(esc);
      }
      i += n;
      continue;
    }
    if (c == '[') {
      i = translate_class(p, i, fold, out);
      continue;
    }
    if (c == '(') {
      fold_stack.push_back(fold);
      if (p.substr(i, 4) == "(?i:") {
        fold = true;
        out.append("(?:");
        i += 4;
      } else {
        out.push_back(c);
        ++i;
      }
      continue;
    }
    if (c == ')') {
      if (!fold_stack.empty()) {
        fold = fold_stack.back();
        fold_stack.pop_back();
      }
      out.push_back(c);
      ++i;
      continue;
    }
    if (c == '.') {
      out.append("[^\\n]");
      ++i;
      continue;
    }
    if (fold && is_ascii_letter(c)) {
      out.push_back('[');
      out.push_back(c);
      out.push_back(other_case(c));
      out.push_back(']');
      ++i;
      continue;
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

struct UnicodeRegex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

UnicodeRegex::UnicodeRegex(std::unique_ptr<Code> code, std::string translated)
    : code_(std::move(code)), translated_(std::move(translated)) {}
UnicodeRegex::UnicodeRegex(UnicodeRegex&&) noexcept = default;
UnicodeRegex& UnicodeRegex::operator=(UnicodeRegex&&) noexcept = default;
UnicodeRegex::~UnicodeRegex() = default;

Result<UnicodeRegex> UnicodeRegex::compile(std::string_view pattern, bool literal) {
  std::string translated = literal ? std::string(pattern) : translate_oniguruma_pattern(pattern);
  // PCRE2_LITERAL rejects PCRE2_UCP (it has no classes to apply it to).
  const uint32_t options = literal ? (PCRE2_UTF | PCRE2_LITERAL) : (PCRE2_UTF | PCRE2_UCP);
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  auto code = std::make_unique<Code>();
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                             options, &error, &error_offset, nullptr);
  if (code->code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return invalid_argument("regex '" + std::string(pattern) + "' (as PCRE2 '" + translated +
                            "'): " + reinterpret_cast<const char*>(message) + " at offset " +
                            std::to_string(error_offset));
  }
  code->jit = pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE) == 0;
  return UnicodeRegex(std::move(code), std::move(translated));
}

bool UnicodeRegex::find_all(std::string_view text,
                            std::vector<std::pair<size_t, size_t>>& spans) const {
  ThreadMatchState& state = match_state();
  if (state.data == nullptr) return false;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    int rc;
    if (code_->jit) {
      rc = pcre2_jit_match(code_->code, subject, text.size(), offset, 0, state.data, state.context);
    } else {
      rc = pcre2_match(code_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, state.data,
                       state.context);
    }
    if (rc == PCRE2_ERROR_NOMATCH) return true;
    if (rc < 0) {
      // JIT stack exhausted on a pathological input: retry this position with the interpreter,
      // which keeps its backtracking state on the heap.
      rc = pcre2_match(code_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, state.data,
                       state.context);
      if (rc == PCRE2_ERROR_NOMATCH) return true;
      if (rc < 0) return false;
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    if (end < begin) return false;  // \K tricks; not used by tokenizers
    if (end > begin) spans.emplace_back(begin, end);
    if (end == begin) {
      if (end >= text.size()) return true;
      // Step over one UTF-8 character.
      size_t next = end + 1;
      while (next < text.size() && (static_cast<uint8_t>(text[next]) & 0xC0) == 0x80) ++next;
      offset = next;
    } else {
      offset = end;
    }
  }
  return true;
}

std::string UnicodeRegex::replace_all(std::string_view text, std::string_view replacement) const {
  std::vector<std::pair<size_t, size_t>> spans;
  (void)find_all(text, spans);  // on a resource limit the rest of the text stays as it is
  std::string out;
  out.reserve(text.size());
  size_t at = 0;
  for (const auto& [begin, end] : spans) {
    out.append(text.substr(at, begin - at));
    out.append(replacement);
    at = end;
  }
  out.append(text.substr(at));
  return out;
}

}  // namespace turbine::tokenizer

// Helpers shared by the chat-template tests.
#pragma once

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"

namespace turbine::chat::testing {

inline std::filesystem::path source_dir() {
  return TURBINE_SOURCE_DIR;
}

// $TURBINE_SHARED, else the TURBINE_SHARED_DEFAULT the build defines.
inline std::filesystem::path shared_dir() {
  if (const char* v = std::getenv("TURBINE_SHARED"); v != nullptr && *v != '\0') return v;
  return TURBINE_SHARED_DEFAULT;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The pinned clock of the parity fixtures: 2024-07-26 09:05 local time.
inline std::tm fixed_time() {
  std::tm t{};
  t.tm_year = 2024 - 1900;
  t.tm_mon = 6;
  t.tm_mday = 26;
  t.tm_hour = 9;
  t.tm_min = 5;
  return t;
}
inline constexpr const char* kFixedNowIso = "2024-07-26T09:05:00";

inline ChatTemplateOptions test_options() {
  ChatTemplateOptions o;
  o.local_time = fixed_time;
  return o;
}

// Renders `source` with `context`; "ERROR: <message>" on failure.
inline std::string render_or_error(const std::string& source, const nlohmann::ordered_json& context,
                                   const ChatTemplateOptions& options = test_options()) {
  auto t = ChatTemplate::parse(source, options);
  if (!t) return "ERROR: " + t.status().message();
  auto r = t->render(context);
  if (!r) return "ERROR: " + r.status().message();
  return *r;
}

}  // namespace turbine::chat::testing

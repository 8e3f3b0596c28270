// libFuzzer target: arbitrary bytes as a regex, full-match and as a JSON Schema `pattern` (search,
// inside a JSON string); kInvalidArgument or a consistent matcher.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "structured/json_schema.h"
#include "structured/regex.h"
#include "structured_fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace turbine::structured;
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::exercise(regex_to_grammar(text, fuzz::fuzz_limits()), data, size);
  const nlohmann::json schema = {{"type", "string"}, {"pattern", text}};
  const std::string schema_text =
      schema.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  fuzz::exercise(json_schema_to_grammar(schema_text, {}, fuzz::fuzz_limits()), data, size);
  return 0;
}

// libFuzzer target: arbitrary bytes as a JSON Schema. The compiler must answer kInvalidArgument or
// a grammar whose masks agree with the matcher (structured_fuzz_util.h); never crash or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "structured/json_schema.h"
#include "structured_fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace turbine::structured;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  JsonGrammarOptions o;
  o.max_whitespace = 2;
  fuzz::exercise(json_schema_to_grammar(text, o, fuzz::fuzz_limits()), data, size);
  return 0;
}

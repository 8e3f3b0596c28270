// libFuzzer target: arbitrary bytes as a GBNF grammar (kInvalidArgument or a consistent matcher).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "structured/ebnf.h"
#include "structured_fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace turbine::structured;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  fuzz::exercise(ebnf_to_grammar(text, fuzz::fuzz_limits()), data, size);
  return 0;
}

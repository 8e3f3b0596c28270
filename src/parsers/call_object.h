// One tool call written as a JSON object, fed a byte at a time:
//   {"name": "get_weather", "arguments": {"city": "Paris"}}
// "parameters" (Llama 3) is accepted for "arguments"; the arguments may also be a JSON string
// holding the object text (see ArgumentsScanner). Other keys ("id", "type", ...) are checked as
// JSON and ignored. Keys may come in any order: arguments seen before the name are buffered.
// Single-threaded value.
#pragma once

#include <string>

#include "parsers/json_scan.h"

namespace turbine::parsers {

class CallObjectParser {
 public:
  enum class Step { kMore, kDone, kError };

  // require_arguments: an object with a name but no arguments is not a call (untagged JSON,
  // where {"name": "Alice"} is more likely an answer than a call). Otherwise it is a call with
  // arguments "{}".
  explicit CallObjectParser(bool require_arguments) : require_arguments_(require_arguments) {}

  // kError: `c` cannot continue a call object and is not consumed. kDone: `c` closed the object.
  Step feed(char c);

  // The call can be announced: the name is known and its arguments have begun (or the object
  // closed with a name). From here on the parser only reports errors in what follows.
  bool ready() const;
  const std::string& name() const { return name_; }
  // Argument text produced since the previous call.
  std::string take_arguments();

 private:
  enum class State : uint8_t {
    kStart,
    kFirstKey,
    kKey,
    kKeyString,
    kColon,
    kValue,
    kName,
    kArguments,
    kSkip,
    kAfter,
    kDone,
  };
  Step close();

  bool require_arguments_;
  State state_ = State::kStart;
  std::string key_;
  std::string name_;
  bool have_name_ = false;
  bool have_arguments_ = false;
  bool closed_ = false;
  std::string arguments_;
  JsonStringDecoder key_decoder_;
  JsonStringDecoder name_decoder_;
  ArgumentsScanner arguments_scanner_;
  JsonScanner skip_;
};

}  // namespace turbine::parsers

#include "fixtures.h"

namespace turbine::parsers::testing {
namespace {

using TF = ToolCallFormat;
using RF = ReasoningFormat;

// DeepSeek's special tokens, spelled once.
#define DS_CALLS_BEGIN "<｜tool▁calls▁begin｜>"
#define DS_CALLS_END "<｜tool▁calls▁end｜>"
#define DS_CALL_BEGIN "<｜tool▁call▁begin｜>"
#define DS_CALL_END "<｜tool▁call▁end｜>"
#define DS_SEP "<｜tool▁sep｜>"
#define DS_V3_CALL(name, args) \
  DS_CALL_BEGIN "function" DS_SEP name "\n```json\n" args "\n```" DS_CALL_END

std::vector<Fixture> build() {
  std::vector<Fixture> f;

  // ------------------------------------------------------------------ Hermes (Qwen2.5, Qwen3)
  f.push_back({.name = "hermes_single",
               .tools = TF::kHermes,
               .text = R"(<tool_call>
{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}
</tool_call>)",
               .calls = {{"get_weather", R"({"city": "Paris", "unit": "celsius"})"}}});
  f.push_back({.name = "hermes_parallel",
               .tools = TF::kHermes,
               .text = R"(<tool_call>
{"name": "get_weather", "arguments": {"city": "Paris"}}
</tool_call>
<tool_call>
{"name": "get_time", "arguments": {"timezone": "Europe/Paris"}}
</tool_call>)",
               .calls = {{"get_weather", R"({"city": "Paris"})"},
                         {"get_time", R"({"timezone": "Europe/Paris"})"}}});
  f.push_back({.name = "hermes_text_before_call",
               .tools = TF::kHermes,
               .text = R"(I'll check the weather for you.

<tool_call>
{"name": "get_weather", "arguments": {"city": "Paris"}}
</tool_call>)",
               .content = "I'll check the weather for you.",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back(
      {.name = "hermes_nested_arguments",
       .tools = TF::kHermes,
       .text = R"json(<tool_call>
{"name": "create_event", "arguments": {"title": "Sync {weekly}", "attendees": [{"name": "Ann", "roles": ["host", "note-taker"]}], "options": {"reminder": {"minutes": [5, 15.5, -1e3]}, "public": false, "room": null}, "note": "say \"hi\" </tool_call> \u00e9"}}
</tool_call>)json",
       .calls = {
           {"create_event",
            R"json({"title": "Sync {weekly}", "attendees": [{"name": "Ann", "roles": ["host", "note-taker"]}], "options": {"reminder": {"minutes": [5, 15.5, -1e3]}, "public": false, "room": null}, "note": "say \"hi\" </tool_call> \u00e9"})json"}}});
  f.push_back({.name = "hermes_arguments_before_name",
               .tools = TF::kHermes,
               .text = R"(<tool_call>
{"arguments": {"q": [1, 2]}, "name": "search"}
</tool_call>)",
               .calls = {{"search", R"({"q": [1, 2]})"}}});
  f.push_back({.name = "hermes_malformed_not_json",
               .tools = TF::kHermes,
               .text = "Sure.\n<tool_call>\nget_weather(city=\"Paris\")\n</tool_call>",
               .content = "Sure.\n<tool_call>\nget_weather(city=\"Paris\")\n</tool_call>"});
  f.push_back({.name = "hermes_malformed_no_name",
               .tools = TF::kHermes,
               .text = "<tool_call>\n{\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
               .content = "<tool_call>\n{\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"});
  f.push_back({.name = "hermes_unknown_tool_is_content",
               .tools = TF::kHermes,
               .text = "<tool_call>\n{\"name\": \"delete_files\", \"arguments\": {\"path\": "
                       "\"/\"}}\n</tool_call>",
               .content = "<tool_call>\n{\"name\": \"delete_files\", \"arguments\": {\"path\": "
                          "\"/\"}}\n</tool_call>",
               .tool_names = {"get_weather"}});
  f.push_back({.name = "hermes_cut_off_in_arguments",
               .tools = TF::kHermes,
               .text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par",
               .calls = {{"get_weather", R"({"city": "Par)"}}});
  f.push_back({.name = "hermes_reasoning_then_call",
               .tools = TF::kHermes,
               .reasoning = RF::kThink,
               .text = R"(<think>
The user wants the weather in Paris. I should call get_weather.
</think>

<tool_call>
{"name": "get_weather", "arguments": {"city": "Paris"}}
</tool_call>)",
               .reasoning_text = "The user wants the weather in Paris. I should call get_weather.",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back({.name = "hermes_reasoning_no_call",
               .tools = TF::kHermes,
               .reasoning = RF::kThink,
               .text = "<think>\nNo tool needed.\n</think>\n\nHello! <b>Hi</b>",
               .content = "Hello! <b>Hi</b>",
               .reasoning_text = "No tool needed."});
  f.push_back({.name = "hermes_arguments_as_string",
               .tools = TF::kHermes,
               .text = R"(<tool_call>
{"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}
</tool_call>)",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back(
      {.name = "hermes_unicode_and_text_after",
       .tools = TF::kHermes,
       .text = "Voilà 🌦 — checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
               "{\"city\": \"Zürich\", \"note\": \"☔ \\ud83c\\udf27\"}}\n</tool_call>\nDone ✅",
       .content = "Voilà 🌦 — checking.\nDone ✅",
       .calls = {{"get_weather", "{\"city\": \"Zürich\", \"note\": \"☔ \\ud83c\\udf27\"}"}}});
  f.push_back({.name = "hermes_raw_newline_in_string_escaped",
               .tools = TF::kHermes,
               .text = "<tool_call>\n{\"name\": \"run_python\", \"arguments\": {\"code\": "
                       "\"print(1)\n\tprint(2)\"}}\n</tool_call>",
               .calls = {{"run_python", "{\"code\": \"print(1)\\n\\tprint(2)\"}"}}});
  f.push_back({.name = "hermes_extra_closing_brace",
               .tools = TF::kHermes,
               .text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                       "\"Paris\"}}}\n</tool_call>",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back({.name = "hermes_no_arguments",
               .tools = TF::kHermes,
               .text = "<tool_call>\n{\"name\": \"get_time\"}\n</tool_call>",
               .calls = {{"get_time", "{}"}}});
  f.push_back({.name = "hermes_angle_brackets_in_text",
               .tools = TF::kHermes,
               .text = "if a<b and <tool_ maybe </tool_call> x <tool_cal",
               .content = "if a<b and <tool_ maybe </tool_call> x <tool_cal"});

  // ------------------------------------------------------------------ Llama 3.x JSON
  f.push_back({.name = "llama_untagged_single",
               .tools = TF::kLlama3Json,
               .text = R"({"name": "get_weather", "parameters": {"city": "Paris"}})",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back({.name = "llama_python_tag",
               .tools = TF::kLlama3Json,
               .text = R"(<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}})",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back(
      {.name = "llama_parallel_semicolon",
       .tools = TF::kLlama3Json,
       .text =
           R"({"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": "get_weather", "parameters": {"city": "Rome"}})",
       .calls = {{"get_weather", R"({"city": "Paris"})"}, {"get_weather", R"({"city": "Rome"})"}}});
  f.push_back(
      {.name = "llama_text_then_tagged_call",
       .tools = TF::kLlama3Json,
       .text =
           R"(Let me search for that.<|python_tag|>{"name": "search", "parameters": {"query": "turbine inference"}})",
       .content = "Let me search for that.",
       .calls = {{"search", R"({"query": "turbine inference"})"}}});
  f.push_back({.name = "llama_text_then_untagged_json_is_content",
               .tools = TF::kLlama3Json,
               .text = R"(The call would be {"name": "x", "parameters": {}})",
               .content = R"(The call would be {"name": "x", "parameters": {}})"});
  f.push_back({.name = "llama_malformed_builtin_call",
               .tools = TF::kLlama3Json,
               .text = R"(<|python_tag|>brave_search.call(query="weather in Paris"))",
               .content = R"(<|python_tag|>brave_search.call(query="weather in Paris"))"});
  f.push_back({.name = "llama_json_answer_is_content",
               .tools = TF::kLlama3Json,
               .text = R"({"temperature": 21, "unit": "C"})",
               .content = R"({"temperature": 21, "unit": "C"})"});
  f.push_back({.name = "llama_name_without_parameters_is_content",
               .tools = TF::kLlama3Json,
               .text = R"({"name": "Alice", "age": 30})",
               .content = R"({"name": "Alice", "age": 30})"});
  f.push_back(
      {.name = "llama_nested_parameters",
       .tools = TF::kLlama3Json,
       .text =
           R"(<|python_tag|>{"name": "create_event", "parameters": {"when": {"start": "2025-01-01T10:00", "slots": [[1, 2], [3]]}, "tags": []}})",
       .calls = {
           {"create_event",
            R"({"when": {"start": "2025-01-01T10:00", "slots": [[1, 2], [3]]}, "tags": []})"}}});
  f.push_back({.name = "llama_leading_whitespace",
               .tools = TF::kLlama3Json,
               .text = "\n\n{\"name\": \"get_time\", \"parameters\": {}}\n",
               .calls = {{"get_time", "{}"}}});

  // ------------------------------------------------------------------ Mistral
  f.push_back({.name = "mistral_array_single",
               .tools = TF::kMistral,
               .text = R"([TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}])",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back(
      {.name = "mistral_array_parallel_with_ids",
       .tools = TF::kMistral,
       .text =
           R"([TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}, {"name": "get_time", "arguments": {}, "id": "f5g6h7i8j"}])",
       .calls = {{"get_weather", R"({"city": "Paris"})"}, {"get_time", "{}"}}});
  f.push_back({.name = "mistral_v11_single",
               .tools = TF::kMistral,
               .text = R"([TOOL_CALLS]get_weather[ARGS]{"city": "Paris"})",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back(
      {.name = "mistral_v11_parallel",
       .tools = TF::kMistral,
       .text =
           R"([TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_time[ARGS]{"timezone": "CET"})",
       .calls = {{"get_weather", R"({"city": "Paris"})"}, {"get_time", R"({"timezone": "CET"})"}}});
  f.push_back({.name = "mistral_text_before_call",
               .tools = TF::kMistral,
               .text = R"(Sure, checking now.[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"})",
               .content = "Sure, checking now.",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back({.name = "mistral_call_id",
               .tools = TF::kMistral,
               .text = R"([TOOL_CALLS]get_weather[CALL_ID]a1B2c3D4e[ARGS]{"city": "Paris"})",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back({.name = "mistral_malformed",
               .tools = TF::kMistral,
               .text = "[TOOL_CALLS]get weather for Paris",
               .content = "[TOOL_CALLS]get weather for Paris"});
  f.push_back(
      {.name = "mistral_think_then_call",
       .tools = TF::kMistral,
       .reasoning = RF::kBracketThink,
       .text = R"([THINK]Need the weather.[/THINK][TOOL_CALLS]get_weather[ARGS]{"city": "Paris"})",
       .reasoning_text = "Need the weather.",
       .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back({.name = "mistral_brackets_in_text",
               .tools = TF::kMistral,
               .text = "[1, 2] is a list [TOOL_",
               .content = "[1, 2] is a list [TOOL_"});

  // ------------------------------------------------------------------ DeepSeek V3 / R1 / V3.1
  f.push_back(
      {.name = "deepseek_v3_single",
       .tools = TF::kDeepSeek,
       .text = DS_CALLS_BEGIN DS_V3_CALL("get_weather", R"({"city": "Paris"})") DS_CALLS_END,
       .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back(
      {.name = "deepseek_v3_parallel",
       .tools = TF::kDeepSeek,
       .text = DS_CALLS_BEGIN DS_V3_CALL("get_weather", R"({"city": "Paris"})") "\n" DS_V3_CALL(
           "get_weather", R"({"city": "Tokyo"})") DS_CALLS_END,
       .calls = {{"get_weather", R"({"city": "Paris"})"},
                 {"get_weather", R"({"city": "Tokyo"})"}}});
  f.push_back({.name = "deepseek_r1_reasoning_then_call",
               .tools = TF::kDeepSeek,
               .reasoning = RF::kThink,
               .prompt_in_reasoning = true,
               .text = "The user asks about the weather in Paris. I'll use the "
                       "tool.\n</think>\n\n" DS_CALLS_BEGIN DS_V3_CALL(
                           "get_weather", R"({"city": "Paris"})") DS_CALLS_END,
               .reasoning_text = "The user asks about the weather in Paris. I'll use the tool.",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back({.name = "deepseek_v31_single",
               .tools = TF::kDeepSeek,
               .text = DS_CALLS_BEGIN DS_CALL_BEGIN "get_weather" DS_SEP
                                                    R"({"city": "Paris"})" DS_CALL_END DS_CALLS_END,
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back({.name = "deepseek_text_before_call",
               .tools = TF::kDeepSeek,
               .text = "Let me look that up.\n\n" DS_CALLS_BEGIN DS_V3_CALL(
                   "get_weather", R"({"city": "Paris"})") DS_CALLS_END,
               .content = "Let me look that up.",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back({.name = "deepseek_malformed_no_name",
               .tools = TF::kDeepSeek,
               .text = DS_CALLS_BEGIN DS_CALL_BEGIN
               "function" DS_SEP "\n```json\n{\"city\": \"Paris\"}\n```" DS_CALL_END DS_CALLS_END,
               .content = DS_CALLS_BEGIN DS_CALL_BEGIN
               "function" DS_SEP "\n```json\n{\"city\": \"Paris\"}\n```" DS_CALL_END DS_CALLS_END});
  // Arguments that break after the call was announced: the call keeps what it had, the rest
  // of the text is content (tool_parsers.h).
  f.push_back({.name = "deepseek_arguments_break_after_announce",
               .tools = TF::kDeepSeek,
               .text = DS_CALLS_BEGIN DS_V3_CALL("get_weather", "{city: Paris}") DS_CALLS_END,
               .content = "city: Paris}\n```" DS_CALL_END DS_CALLS_END,
               .calls = {{"get_weather", "{"}}});
  f.push_back(
      {.name = "deepseek_nested_arguments",
       .tools = TF::kDeepSeek,
       .text = DS_CALLS_BEGIN DS_V3_CALL(
           "query_db",
           R"({"query": {"filters": [{"field": "temp", "op": ">", "value": 20}], "sort": "desc"}})")
           DS_CALLS_END,
       .calls = {
           {"query_db",
            R"({"query": {"filters": [{"field": "temp", "op": ">", "value": 20}], "sort": "desc"}})"}}});

  // ------------------------------------------------------------------ generic JSON
  f.push_back({.name = "json_single",
               .tools = TF::kJson,
               .text = R"({"name": "get_weather", "arguments": {"city": "Paris"}})",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back(
      {.name = "json_array",
       .tools = TF::kJson,
       .text =
           R"([{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "parameters": {}}])",
       .calls = {{"get_weather", R"({"city": "Paris"})"}, {"get_time", "{}"}}});
  f.push_back({.name = "json_fenced",
               .tools = TF::kJson,
               .text = "```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                       "\"Paris\"}}\n```",
               .calls = {{"get_weather", R"({"city": "Paris"})"}}});
  f.push_back({.name = "json_plain_text",
               .tools = TF::kJson,
               .text = "The weather is sunny.",
               .content = "The weather is sunny."});
  f.push_back({.name = "json_name_only_is_content",
               .tools = TF::kJson,
               .text = R"({"name": "Alice"})",
               .content = R"({"name": "Alice"})"});
  f.push_back({.name = "json_objects_one_per_line_then_text",
               .tools = TF::kJson,
               .text = "{\"name\": \"a\", \"arguments\": {}}\n{\"name\": \"b\", \"arguments\": "
                       "{\"x\": 1}}\nI called both.",
               .content = "\nI called both.",
               .calls = {{"a", "{}"}, {"b", R"({"x": 1})"}}});

  // ------------------------------------------------------------------ reasoning only
  f.push_back({.name = "think_qwen3",
               .reasoning = RF::kThink,
               .text = "<think>\nLet me add.\n\n2 + 2 = 4.\n</think>\n\nThe answer is 4.",
               .content = "The answer is 4.",
               .reasoning_text = "Let me add.\n\n2 + 2 = 4."});
  f.push_back({.name = "think_r1_prompt_opened",
               .reasoning = RF::kThink,
               .prompt_in_reasoning = true,
               .text = "Okay, 2+2.\n</think>\n\n**4**",
               .content = "**4**",
               .reasoning_text = "Okay, 2+2."});
  f.push_back({.name = "think_r1_repeats_open_tag",
               .reasoning = RF::kThink,
               .prompt_in_reasoning = true,
               .text = "<think>\nHmm.\n</think>\n4",
               .content = "4",
               .reasoning_text = "Hmm."});
  f.push_back({.name = "think_absent",
               .reasoning = RF::kThink,
               .text = "Just an answer.\n",
               .content = "Just an answer.\n"});
  f.push_back({.name = "think_cut_off",
               .reasoning = RF::kThink,
               .text = "<think>\nStill thinking about",
               .reasoning_text = "Still thinking about"});
  f.push_back({.name = "think_empty_block",
               .reasoning = RF::kThink,
               .text = "<think>\n\n</think>\n\nHello",
               .content = "Hello"});
  f.push_back({.name = "think_bracket",
               .reasoning = RF::kBracketThink,
               .text = "[THINK]Plan: greet.[/THINK]Hello!",
               .content = "Hello!",
               .reasoning_text = "Plan: greet."});
  f.push_back({.name = "think_angle_brackets_inside",
               .reasoning = RF::kThink,
               .text = "<think>a < b, <thinking> and </thin are not tags</think>ok",
               .content = "ok",
               .reasoning_text = "a < b, <thinking> and </thin are not tags"});
  f.push_back({.name = "think_tag_later_is_content",
               .reasoning = RF::kThink,
               .text = "Answer first <think>not reasoning</think>",
               .content = "Answer first <think>not reasoning</think>"});
  f.push_back({.name = "think_unicode",
               .reasoning = RF::kThink,
               .text = "<think>\n思考中…🤔\n</think>\n答案是四。",
               .content = "答案是四。",
               .reasoning_text = "思考中…🤔"});
  return f;
}

}  // namespace

const std::vector<Fixture>& fixtures() {
  static const std::vector<Fixture> kFixtures = build();
  return kFixtures;
}

}  // namespace turbine::parsers::testing

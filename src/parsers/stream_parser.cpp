#include "parsers/stream_parser.h"

namespace turbine::parsers {

size_t complete_utf8_prefix(std::string_view s) {
  const size_t n = s.size();
  const size_t stop = n >= 4 ? n - 4 : 0;
  for (size_t i = n; i > stop; --i) {
    const auto b = static_cast<unsigned char>(s[i - 1]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: look further back
    if (b < 0xC0) return n;            // ASCII ends a character
    const size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
    return (i - 1) + len > n ? i - 1 : n;
  }
  return n;
}

ParsedOutput assemble(const Deltas& deltas) {
  ParsedOutput out;
  for (const api::ChoiceDelta& d : deltas) {
    out.content += d.content;
    out.reasoning += d.reasoning;
    for (const api::ToolCallDelta& t : d.tool_calls) {
      if (t.index < 0) continue;
      if (static_cast<size_t>(t.index) >= out.tool_calls.size()) {
        out.tool_calls.resize(static_cast<size_t>(t.index) + 1);
      }
      api::ToolCall& call = out.tool_calls[static_cast<size_t>(t.index)];
      if (!t.id.empty()) call.id = t.id;
      if (!t.name.empty()) call.name = t.name;
      call.arguments += t.arguments;
    }
  }
  return out;
}

ParsedOutput parse_all(StreamParser& parser, std::string_view text) {
  Deltas deltas;
  parser.feed(text, deltas);
  parser.finish(deltas);
  return assemble(deltas);
}

void DeltaWriter::content(std::string_view s, Deltas& out) {
  write(Kind::kContent, 0, s, out);
}

void DeltaWriter::reasoning(std::string_view s, Deltas& out) {
  write(Kind::kReasoning, 0, s, out);
}

void DeltaWriter::call_begin(int index, std::string id, std::string name, Deltas& out) {
  flush(out);
  api::ChoiceDelta piece;
  piece.tool_calls.push_back({index, std::move(id), std::move(name), {}});
  out.push_back(std::move(piece));
}

void DeltaWriter::call_arguments(int index, std::string_view s, Deltas& out) {
  write(Kind::kArguments, index, s, out);
}

void DeltaWriter::flush(Deltas& out) {
  if (carry_kind_ != Kind::kNone) put(carry_kind_, carry_index_, carry_, out);
  carry_.clear();
  carry_kind_ = Kind::kNone;
}

void DeltaWriter::write(Kind kind, int index, std::string_view s, Deltas& out) {
  if (s.empty()) return;
  if (carry_kind_ != Kind::kNone && (carry_kind_ != kind || carry_index_ != index)) flush(out);
  std::string joined;
  std::string_view whole = s;
  if (!carry_.empty()) {
    joined = carry_ + std::string(s);
    whole = joined;
  }
  const size_t n = complete_utf8_prefix(whole);
  put(kind, index, whole.substr(0, n), out);
  std::string rest(whole.substr(n));
  carry_ = std::move(rest);
  carry_kind_ = carry_.empty() ? Kind::kNone : kind;
  carry_index_ = index;
}

void DeltaWriter::put(Kind kind, int index, std::string_view s, Deltas& out) {
  if (s.empty()) return;
  api::ChoiceDelta* last = out.empty() ? nullptr : &out.back();
  switch (kind) {
    case Kind::kNone: return;
    case Kind::kContent:
      if (last != nullptr && !last->content.empty() && last->reasoning.empty() &&
          last->tool_calls.empty()) {
        last->content.append(s);
        return;
      }
      out.emplace_back().content.assign(s);
      return;
    case Kind::kReasoning:
      if (last != nullptr && !last->reasoning.empty() && last->content.empty() &&
          last->tool_calls.empty()) {
        last->reasoning.append(s);
        return;
      }
      out.emplace_back().reasoning.assign(s);
      return;
    case Kind::kArguments:
      if (last != nullptr && last->content.empty() && last->reasoning.empty() &&
          last->tool_calls.size() == 1 && last->tool_calls[0].index == index) {
        last->tool_calls[0].arguments.append(s);
        return;
      }
      out.emplace_back().tool_calls.push_back({index, {}, {}, std::string(s)});
      return;
  }
}

}  // namespace turbine::parsers

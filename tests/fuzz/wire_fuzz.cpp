// libFuzzer target: the request plane reads frames from the network (runtime/wire.h). Whatever
// the bytes, splitting a stream into frames and decoding them must never crash, read out of
// bounds or allocate without bound (counts are checked against the bytes left), and whatever
// decodes must re-encode to a frame that decodes again to the same bytes (encode is a fixed point
// after one round: decode canonicalises, e.g. an ok status drops its message). The event plane's
// JSON payloads (KV events, load) come from the network too.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "runtime/wire.h"

namespace {

using namespace turbine::runtime;

std::string reencode(const Frame& f) {
  std::string out;
  std::visit([&out](const auto& frame) { encode(frame, out); }, f);
  return out;
}

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> stream(data, size);
  // As a connection reads: frame after frame until one is incomplete or refused.
  for (int frames = 0; frames < 64; ++frames) {
    auto n = frame_size(stream);
    if (!n.has_value() || *n == 0) break;
    if (*n > stream.size() || *n < kFrameHeaderBytes) __builtin_trap();
    auto frame = decode(stream.first(*n));
    stream = stream.subspan(*n);
    if (!frame.has_value()) continue;
    const std::string once = reencode(*frame);
    auto size_again = frame_size(bytes_of(once));
    if (!size_again.has_value() || *size_again != once.size()) __builtin_trap();
    auto again = decode(bytes_of(once));
    if (!again.has_value()) __builtin_trap();  // what we encode, we must decode
    if (reencode(*again) != once) __builtin_trap();
  }
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto ev = kv_event_from_json(text); ev.has_value()) {
    auto back = kv_event_from_json(kv_event_to_json(ev->first, ev->second));
    if (!back.has_value() || back->first != ev->first) __builtin_trap();
  }
  if (auto load = load_from_json(text); load.has_value()) {
    auto back = load_from_json(load_to_json(*load));
    if (!back.has_value() || !(*back == *load)) __builtin_trap();
  }
  return 0;
}

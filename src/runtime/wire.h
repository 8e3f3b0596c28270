// The request plane's wire protocol: every frame between a frontend (RemoteEngine) and a worker
// (WorkerServer), versioned, in one header. Also the event plane's payloads (KV events, load).
//
// Framing (TCP, both directions): u32 little-endian payload length, then the payload:
//   u8 version (kWireVersion), u8 type, body.
// Bodies are fixed-layout little-endian binary (integers, IEEE floats, u32-counted arrays and
// strings). Binary rather than JSON because the output frame is sent once per generated token
// per stream: encoding is a few stores, decoding never allocates for numbers, and logprobs
// round-trip bit-exactly. Frames larger than kMaxFrameBytes are a protocol error (the
// connection is closed). A peer with another version answers nothing it cannot parse: frames of
// an unknown version or type are protocol errors too, so mismatched deployments fail loudly.
//
//   Request (frontend -> worker):  u64 id, i32[] prompt, SamplingParams (every field)
//   Cancel  (frontend -> worker):  u64 id
//   Output  (worker -> frontend):  u64 id, u8 finish, i32 prompt_tokens, completion_tokens,
//                                  cached_tokens, u8 status code, str message, str field,
//                                  tokens[] {i32 token, f32 logprob, {i32, f32}[] top}
// A request rejected by the worker (validation, queue full) gets one Output with finish = error.
// Ids are the frontend's, unique among the live requests of one connection.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>

#include "common/status.h"
#include "engine/async_engine.h"
#include "kv/protocol.h"

namespace turbine::runtime {

inline constexpr uint8_t kWireVersion = 1;
inline constexpr uint32_t kMaxFrameBytes = 32u << 20;
inline constexpr size_t kFrameHeaderBytes = 4;

enum class FrameType : uint8_t { kRequest = 1, kCancel = 2, kOutput = 3 };

struct RequestFrame {
  uint64_t id = 0;
  std::vector<int32_t> prompt;
  engine::SamplingParams params;
};
struct CancelFrame {
  uint64_t id = 0;
};
struct OutputFrame {
  uint64_t id = 0;
  engine::EngineOutput output;
};
using Frame = std::variant<RequestFrame, CancelFrame, OutputFrame>;

// Append one whole frame (length prefix included) to `out`.
void encode(const RequestFrame& f, std::string& out);
void encode(const CancelFrame& f, std::string& out);
void encode(const OutputFrame& f, std::string& out);

// If `buf` starts with a whole frame, its total size (prefix included); 0 if more bytes are
// needed; an error for a frame over kMaxFrameBytes.
Result<size_t> frame_size(std::span<const uint8_t> buf);
// Decodes one whole frame as delimited by frame_size (prefix included).
Result<Frame> decode(std::span<const uint8_t> frame);

// ---- event plane payloads (JSON: low rate, readable with `nats sub`) -------------------------

struct WorkerLoad {
  uint64_t instance_id = 0;
  int running = 0;
  int waiting = 0;
  int kv_used_blocks = 0;
  int kv_total_blocks = 0;
  bool operator==(const WorkerLoad&) const = default;
};

// A KV event of one worker, as published on {ns}.{component}.kv_events.
std::string kv_event_to_json(uint64_t instance_id, const kv::KvEvent& event);
Result<std::pair<uint64_t, kv::KvEvent>> kv_event_from_json(std::string_view json);
std::string load_to_json(const WorkerLoad& load);
Result<WorkerLoad> load_from_json(std::string_view json);

}  // namespace turbine::runtime

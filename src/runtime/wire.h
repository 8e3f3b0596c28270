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
//   Request (frontend -> worker):  u64 id, i32[] prompt, SamplingParams (every field; version 6
//                                  added {i32 token, f32 bias}[] logit_bias, u64 prompt_group and
//                                  the constraint as u8 kind, str text, i32 replay; version 7
//                                  its start trigger as i32[] end, i32[] open),
//                                  u8[16] trace id, u8[8] parent span id, u8 trace flags
//   Cancel  (frontend -> worker):  u64 id, u8 stop (1: AsyncEngine::stop, version 4)
//   Output  (worker -> frontend):  u64 id, u8 finish, i32 prompt_tokens, completion_tokens,
//                                  cached_tokens, u8 status code, str message, str field,
//                                  tokens[] {i32 token, f32 logprob, {i32, f32}[] top}
//   KvPull  (decode worker -> prefill worker): u64 id, u64 transfer_id, i32 first_block, n_blocks
//   KvData  (prefill worker -> decode worker): u64 id, u8 status code, str message, str bytes
//   KvRelease (-> prefill worker):             u64 transfer_id
// Disaggregated serving (issue 8) adds optional trailing sections, present only when used (so
// plain frames are unchanged): Request: u8 flags (1 prefill-only, 2 import), KvTransferMeta if
// import; Output: u8 1, KvTransferMeta. KvTransferMeta: u64 transfer_id, u64 instance_id,
// str address, str dtype, i32 block_size, n_layers, n_kv_heads, head_dim, i64 bytes_per_block,
// i32 num_tokens, i32[] block_ids, u64[] block_hashes, str device_pool (version 3; the source
// backend's KV pool for a device-to-device copy on one host, e.g. CUDA IPC handles; may be empty).
// A request rejected by the worker (validation, queue full) gets one Output with finish = error.
// Ids are the frontend's, unique among the live requests of one connection.
//
// Prompt logprobs (version 6, issue 18 item 4): Request flags bit 4 (the flags byte is written
// when any bit is set) adds i32 prompt_logprobs after the import section; Output adds an optional
// section u8 2, tokens[] (same layout as `tokens`) after the KV transfer section.
// Priority classes (version 8, issue 29): Request flags bit 8 adds i32 priority (non-zero) last.
//
// Connection life (version 4, issue 18):
//   Hello   (client -> worker, the first frame of every connection): str token. A worker with a
//           token closes a connection whose first frame is not a Hello with that token (after a
//           Close frame saying why); a worker without one accepts any Hello.
//   Ping    (client -> worker): u64 nonce; answered at once with Pong {u64 nonce} by the worker's
//           I/O thread (not the engine), so a silent connection means a hung or unreachable
//           process, not a busy engine.
//   Close   (worker -> client): u8 status code, str message; the worker closes after it.
//
// Encoder models (version 5, issue 27): one frame each way per API call (many inputs), not per
// token, so the bodies are opaque byte strings encoded by runtime/encoder_wire.h (a malformed
// body fails that request, not the connection):
//   EncodeRequest  (frontend -> worker): u64 id, str body (encoder::EncoderRequest)
//   EncodeResponse (worker -> frontend): u64 id, str body (Result<encoder::EncoderResponse>)
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "common/status.h"
#include "engine/async_engine.h"
#include "kv/protocol.h"

namespace turbine::runtime {

// 2: requests carry a trace context; 3: KvTransferMeta carries device_pool; 4: Hello, Ping, Pong
// and Close frames (a v3 peer fails on the version of the first frame); 5: EncodeRequest and
// EncodeResponse frames; 6: SamplingParams end with logit_bias, prompt_group and the output
// constraint (u8 kind, str text, i32 constraint_replay), so a worker compiles and enforces it (a
// v5 peer fails on the Hello's version rather than generating unconstrained text); prompt
// logprobs (request flag 4 + i32 k; output section 2: tokens[]); 7: the constraint's start
// trigger (i32[] end, i32[] open after constraint_replay, at most kMaxTriggerIds each), so a
// worker lets a reasoning model think before the grammar starts (a v6 peer fails on the Hello's
// version rather than constraining the reasoning).
// 8: request flag 8 adds i32 priority (SamplingParams::priority, priority scheduling) after the
// prompt logprobs; written only when non-zero, so a v8 frame without it has v7's layout, and a v8
// peer reads v7 frames (kOldestReadableWireVersion). A v7 peer still fails on the version of a
// v8 peer's first frame.
inline constexpr uint8_t kWireVersion = 8;
inline constexpr uint8_t kOldestReadableWireVersion = 7;
// A Hello larger than this closes the connection before it is read whole: an unauthenticated peer
// cannot make the worker buffer a 32 MiB frame.
inline constexpr uint32_t kMaxHelloBytes = 4096;
inline constexpr uint32_t kMaxFrameBytes = 32u << 20;
inline constexpr size_t kFrameHeaderBytes = 4;

enum class FrameType : uint8_t {
  kRequest = 1,
  kCancel = 2,
  kOutput = 3,
  kKvPull = 4,
  kKvData = 5,
  kKvRelease = 6,
  kHello = 7,
  kPing = 8,
  kPong = 9,
  kClose = 10,
  kEncodeRequest = 11,
  kEncodeResponse = 12
};

struct RequestFrame {
  uint64_t id = 0;
  std::vector<int32_t> prompt;
  engine::SamplingParams params;
  engine::KvDisagg disagg;
  trace::TraceContext trace;  // the router's span (W3C trace context); all zero: not traced
};
struct CancelFrame {
  uint64_t id = 0;
  bool stop = false;  // the caller's stop() (a stop string), not a cancellation
};
struct OutputFrame {
  uint64_t id = 0;
  engine::EngineOutput output;
};
struct KvPullFrame {
  uint64_t id = 0;  // the puller's, echoed in the KvData answer
  uint64_t transfer_id = 0;
  int32_t first_block = 0;
  int32_t n_blocks = 0;
};
struct KvDataFrame {
  uint64_t id = 0;
  Status status;      // not ok: no bytes
  std::string bytes;  // the blocks, engine::KvLayout order
};
struct KvReleaseFrame {
  uint64_t transfer_id = 0;
};
struct HelloFrame {
  std::string token;  // the shared request-plane token; empty when the client has none
};
struct PingFrame {
  uint64_t nonce = 0;
};
struct PongFrame {
  uint64_t nonce = 0;
};
struct CloseFrame {
  Status status;  // why the worker closes (e.g. kUnauthenticated)
};
struct EncodeRequestFrame {
  uint64_t id = 0;
  std::string body;  // encode_encoder_request (runtime/encoder_wire.h)
};
struct EncodeResponseFrame {
  uint64_t id = 0;
  std::string body;  // encode_encoder_response
};
using Frame = std::variant<RequestFrame, CancelFrame, OutputFrame, KvPullFrame, KvDataFrame,
                           KvReleaseFrame, HelloFrame, PingFrame, PongFrame, CloseFrame,
                           EncodeRequestFrame, EncodeResponseFrame>;

// Append one whole frame (length prefix included) to `out`.
void encode(const RequestFrame& f, std::string& out);
void encode(const CancelFrame& f, std::string& out);
void encode(const OutputFrame& f, std::string& out);
void encode(const KvPullFrame& f, std::string& out);
void encode(const KvDataFrame& f, std::string& out);
void encode(const KvReleaseFrame& f, std::string& out);
void encode(const HelloFrame& f, std::string& out);
void encode(const PingFrame& f, std::string& out);
void encode(const PongFrame& f, std::string& out);
void encode(const CloseFrame& f, std::string& out);
void encode(const EncodeRequestFrame& f, std::string& out);
void encode(const EncodeResponseFrame& f, std::string& out);

// If `buf` starts with a whole frame, its total size (prefix included); 0 if more bytes are
// needed; an error for a frame over kMaxFrameBytes.
Result<size_t> frame_size(std::span<const uint8_t> buf);
// Decodes one whole frame as delimited by frame_size (prefix included).
Result<Frame> decode(std::span<const uint8_t> frame);

// Moves every whole frame at the front of `buf` to `frames` and drops their bytes; a frame over
// the limit or malformed is an error (the caller closes the connection).
Status take_frames(std::string& buf, std::vector<Frame>& frames);

// Whether two tokens are equal, in time that depends only on their lengths.
bool tokens_equal(std::string_view a, std::string_view b);

// ---- event plane payloads (JSON: low rate, readable with `nats sub`) -------------------------

// The load subject carries the reported part of engine::WorkerLoad (instance id, running,
// waiting, KV blocks used/total).
using engine::WorkerLoad;

// A KV event of one worker, as published on {ns}.{component}.kv_events.
std::string kv_event_to_json(uint64_t instance_id, const kv::KvEvent& event);
Result<std::pair<uint64_t, kv::KvEvent>> kv_event_from_json(std::string_view json);
std::string load_to_json(const WorkerLoad& load);
Result<WorkerLoad> load_from_json(std::string_view json);

}  // namespace turbine::runtime

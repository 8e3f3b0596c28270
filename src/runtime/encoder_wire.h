// The bodies of the request plane's encoder frames (runtime/wire.h, version 5): an
// encoder::EncoderRequest and a Result<encoder::EncoderResponse>, little-endian binary like the
// other frames (floats round-trip bit-exactly, so a remote embedding equals a local one).
//
//   request:  u8 op, u8 flags (1 truncate, 2 normalize set, 4 normalize), i32 truncate_tokens,
//             i32 dimensions, str input_field, str query_field, str[] texts, str[] queries,
//             i32[][] token_inputs
//   response: u8 status code, str message, str field; when ok: u8 kind, then per kind
//             embeddings   {f32[] vector, i32 n_tokens}[]
//             labels       {{i32 id, str label, f32 probability, f32 logit}[], i32 top,
//                           i32 n_tokens}[]
//             entities     {{str label, f32 score, str word, u32 start, end, byte_start,
//                           byte_end}[], {i32 token_id, i32 label_id, f32 score, u32 begin,
//                           u32 end}[], i32 n_tokens}[]
//             scores       {f32 score, f32 logit, i32 n_tokens}[]
// Counts are u32. Decoding checks every count against the bytes left, so a hostile body cannot
// make the reader allocate more than it sent.
//
// Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "encoder/async_encoder.h"

namespace turbine::runtime {

std::string encode_encoder_request(const encoder::EncoderRequest& request);
Result<encoder::EncoderRequest> decode_encoder_request(std::string_view body);

std::string encode_encoder_response(const Result<encoder::EncoderResponse>& response);
// The response, or the error it carries; a malformed body is kInternal.
Result<encoder::EncoderResponse> decode_encoder_response(std::string_view body);

}  // namespace turbine::runtime

// The OpenAI Responses adapter: POST /v1/responses through the same pipeline as chat.
//
// parse: api::parse_responses_request, then previous_response_id is resolved against the
// response store (its conversation goes before this turn's input; unknown: 400
// previous_response_not_found); the request runs as an api::ChatRequest whose protocol_state
// keeps the ResponsesRequest. The encoder is api::ResponsesEncoder: typed events when streaming
// (response.created ... response.completed), the `response` object otherwise; once finished the
// response is stored (unless `store: false`) for previous_response_id and GET/DELETE
// /v1/responses/{id} (frontend.cpp). Errors in OpenAI's shape with the Responses codes.
// Thread rules: protocol.h; the store is thread-safe.
#pragma once

#include <memory>

#include "api/response_store.h"
#include "frontend/protocol.h"

namespace turbine::frontend {

// `store` outlives the adapter.
std::unique_ptr<ProtocolAdapter> make_responses_adapter(api::ResponseStore& store);

}  // namespace turbine::frontend

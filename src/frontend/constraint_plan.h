// What a chat request's tool_choice and output format ask the engine to enforce, and how the
// constrained text is parsed afterwards: the seam between the protocols and structured outputs
// (src/structured: a grammar compiled from a JSON Schema, matched per sequence while sampling).
//
//   tool_choice "required"        -> the output is a JSON array of 1+ calls (1 when
//                                    parallel_tool_calls is false):
//                                    [{"name": <one of the tools>, "parameters": <its schema>}]
//                                    parsed by the generic JSON tool-call parser;
//   tool_choice {function: f}     -> the output is f's arguments object (its parameters schema),
//                                    parsed as one call of f;
//   "auto" / "none"               -> nothing enforced; the model's own format and parser;
//   text.format json_schema / json_object (Responses) -> the content is that JSON.
//
// Pure; safe on any thread.
#pragma once

#include <string>

#include "api/chat_extras.h"
#include "common/status.h"
#include "engine/sampling.h"
#include "frontend/postprocessor.h"
#include "structured/constraint_spec.h"

namespace turbine::frontend {

struct ConstraintPlan {
  enum class Kind { kNone, kJsonSchema, kJsonObject };
  Kind kind = Kind::kNone;
  std::string schema;  // kJsonSchema: the JSON Schema the whole output must match
  ToolOutputForm tool_form = ToolOutputForm::kModel;
  std::string function;  // kArguments: the function whose arguments the output is

  bool active() const { return kind != Kind::kNone; }
};

// The plan for `extras` (tools and parameter schemas were checked by the parsers).
ConstraintPlan plan_constraints(const api::ChatExtras& extras);

// The plan as the constraint the engine enforces (structured/constraint_spec.h); kNone when the
// plan is not active.
structured::ConstraintSpec constraint_spec(const ConstraintPlan& plan);

// Whether the engine can enforce the plan: the constraint goes through structured's grammar front
// end (no vocabulary needed, so it is cheap); an unsupported or malformed schema is
// kInvalidArgument naming `param` ("tools", "tool_choice", "text.format").
Status check_constraint(const ConstraintPlan& plan, const std::string& param);

// Puts the plan's constraint into the engine parameters (SamplingParams::constraint). A
// tool_choice constraint wins over one already there; an output format does not replace one.
void attach_constraint(const ConstraintPlan& plan, engine::SamplingParams& params);

// The JSON Schema of tool_choice "required": an array of {"name", "parameters"} objects, one
// alternative per tool (parameters: the tool's schema, or any object), at least one item and at
// most one when `parallel` is false.
std::string required_calls_schema(const api::ChatExtras& extras);

}  // namespace turbine::frontend

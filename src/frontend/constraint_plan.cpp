#include "frontend/constraint_plan.h"

#include "api/json_writer.h"
#include "structured/compiler.h"

namespace turbine::frontend {
namespace {

constexpr std::string_view kAnyObject = R"({"type":"object"})";

std::string_view parameters_of(const api::ToolSpec& tool) {
  return tool.parameters_json.empty() ? kAnyObject : std::string_view(tool.parameters_json);
}

}  // namespace

std::string required_calls_schema(const api::ChatExtras& extras) {
  std::string out = R"({"type":"array","minItems":1,)";
  if (!extras.parallel_tool_calls) out += R"("maxItems":1,)";
  out += R"("items":{"anyOf":[)";
  for (size_t i = 0; i < extras.tools.size(); ++i) {
    const api::ToolSpec& t = extras.tools[i];
    if (i > 0) out += ',';
    out += R"({"type":"object","properties":{"name":{"const":)";
    api::append_json_string(out, t.name);
    out += R"(},"parameters":)";
    out += parameters_of(t);
    out += R"(},"required":["name","parameters"],"additionalProperties":false})";
  }
  out += "]}}";
  return out;
}

ConstraintPlan plan_constraints(const api::ChatExtras& extras) {
  ConstraintPlan plan;
  switch (extras.tool_choice.mode) {
    case api::ToolChoice::Mode::kRequired:
      if (extras.tools.empty()) break;
      plan.kind = ConstraintPlan::Kind::kJsonSchema;
      plan.schema = required_calls_schema(extras);
      plan.tool_form = ToolOutputForm::kJsonArray;
      return plan;
    case api::ToolChoice::Mode::kFunction:
      for (const api::ToolSpec& t : extras.tools) {
        if (t.name != extras.tool_choice.function) continue;
        plan.kind = ConstraintPlan::Kind::kJsonSchema;
        plan.schema = std::string(parameters_of(t));
        plan.tool_form = ToolOutputForm::kArguments;
        plan.function = t.name;
        return plan;
      }
      break;
    case api::ToolChoice::Mode::kAuto:
    case api::ToolChoice::Mode::kNone: break;
  }
  switch (extras.output_format.type) {
    case api::OutputFormat::Type::kJsonSchema:
      plan.kind = ConstraintPlan::Kind::kJsonSchema;
      plan.schema = extras.output_format.schema_json;
      break;
    case api::OutputFormat::Type::kJsonObject: plan.kind = ConstraintPlan::Kind::kJsonObject; break;
    case api::OutputFormat::Type::kText: break;
  }
  return plan;
}

structured::ConstraintSpec constraint_spec(const ConstraintPlan& plan) {
  switch (plan.kind) {
    case ConstraintPlan::Kind::kJsonSchema:
      return {structured::ConstraintSpec::Kind::kJsonSchema, plan.schema};
    case ConstraintPlan::Kind::kJsonObject:
      return {structured::ConstraintSpec::Kind::kJsonObject, ""};
    case ConstraintPlan::Kind::kNone: break;
  }
  return {};
}

Status check_constraint(const ConstraintPlan& plan, const std::string& param) {
  if (!plan.active()) return Status::ok();
  auto grammar = structured::constraint_to_grammar(constraint_spec(plan), {});
  if (grammar) return Status::ok();
  return invalid_argument(param + ": " + grammar.status().message(), param);
}

void attach_constraint(const ConstraintPlan& plan, engine::SamplingParams& params) {
  if (!plan.active()) return;
  // A tool_choice constraint replaces an output format the request may also carry (the calls are
  // the output); an output format does not replace one set already (response_format).
  if (plan.tool_form == ToolOutputForm::kModel && params.constraint.active()) return;
  params.constraint = constraint_spec(plan);
}

}  // namespace turbine::frontend

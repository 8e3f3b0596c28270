#include "structured/constraint_spec.h"

namespace turbine::structured {

const char* constraint_kind_name(ConstraintSpec::Kind kind) {
  switch (kind) {
    case ConstraintSpec::Kind::kNone: return "none";
    case ConstraintSpec::Kind::kJsonSchema: return "json_schema";
    case ConstraintSpec::Kind::kJsonObject: return "json_object";
    case ConstraintSpec::Kind::kRegex: return "regex";
    case ConstraintSpec::Kind::kChoice: return "choice";
    case ConstraintSpec::Kind::kGrammar: return "grammar";
  }
  return "none";
}

std::optional<ConstraintSpec::Kind> parse_constraint_kind(std::string_view name) {
  for (auto kind : {ConstraintSpec::Kind::kNone, ConstraintSpec::Kind::kJsonSchema,
                    ConstraintSpec::Kind::kJsonObject, ConstraintSpec::Kind::kRegex,
                    ConstraintSpec::Kind::kChoice, ConstraintSpec::Kind::kGrammar}) {
    if (name == constraint_kind_name(kind)) return kind;
  }
  return std::nullopt;
}

}  // namespace turbine::structured

// GBNF / EBNF grammars in the dialect llama.cpp and XGrammar accept:
//
//   root   ::= object            # comments run to the end of the line
//   object ::= "{" ws ( pair ( "," ws pair )* )? "}"
//   pair   ::= [a-z_]+ ":" ws [0-9]{1,3}
//
// Rules `name ::= body`; alternatives `|`; sequences; "strings" and [character classes]
// (ranges, [^...] negation, escapes \n \r \t \\ \" \] \- \xHH \uHHHH \UHHHHHHHH); `.` (any
// character); groups; postfix * + ? {m} {m,} {m,n} {,n}. Classes and `.` are over Unicode code
// points (UTF-8 encoded). A rule body may span lines; it ends where the next `name ::=` starts.
// The start rule is `root`. Undefined rules, duplicate definitions, left recursion and a missing
// root are errors with line:column.
#pragma once

#include <string_view>

#include "common/status.h"
#include "structured/grammar.h"

namespace turbine::structured {

Result<Grammar> ebnf_to_grammar(std::string_view text, const CompileLimits& limits);

}  // namespace turbine::structured

// A test that cannot run because something it needs is absent (a binary such as etcd or
// nats-server, a shared asset under ../shared, a library the build left out): skipped on a
// developer's machine, a failure under CI=true, where everything is installed and a skip would
// hide a gap. Not for what CI does not provide either (a CUDA device; opt-in benchmarks).
//
//   if (bin.empty()) TURBINE_MISSING_DEPENDENCY("etcd is not installed");
//   TURBINE_MISSING_DEPENDENCY("missing asset " << path);  // any streamable expression
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace turbine::testing {

inline bool in_ci() {
  const char* v = std::getenv("CI");
  return v != nullptr && std::string_view(v) == "true";
}

}  // namespace turbine::testing

// Returns from the calling function (a test body or SetUp), like GTEST_SKIP and FAIL.
#define TURBINE_MISSING_DEPENDENCY(what)                                       \
  do {                                                                         \
    if (::turbine::testing::in_ci()) FAIL() << what << " (required: CI=true)"; \
    GTEST_SKIP() << what;                                                      \
  } while (0)

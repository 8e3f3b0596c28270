// One blocking HTTP(S) exchange over libcurl: the planner's scrapes, worker health checks and
// the Kubernetes API calls. A handle per call (a few calls per interval). Any thread.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace turbine::planner {

struct HttpCall {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  double timeout_s = 5;
  std::string ca_file;  // https: trust exactly this CA bundle (empty: the system's)
};

struct HttpReply {
  long status = 0;
  std::string body;
};

// kUnavailable when no HTTP response arrived (connection refused, timeout, TLS failure);
// any HTTP status is a reply.
Result<HttpReply> http_call(const HttpCall& call);

}  // namespace turbine::planner

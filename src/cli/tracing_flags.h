// `--otlp-traces-endpoint` for run, frontend and worker: where spans go (OTLP/HTTP JSON).
// Also TURBINE_OTLP_TRACES_ENDPOINT, then OpenTelemetry's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /
// OTEL_EXPORTER_OTLP_ENDPOINT; OTEL_SERVICE_NAME overrides the role's service name.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "common/trace.h"

namespace turbine::cli {

struct TracingFlags {
  std::string otlp_traces_endpoint;

  void add_to(CLI::App& cmd);
  // A tracer exporting to the configured endpoint, or a disabled one (never null).
  std::shared_ptr<trace::Tracer> make_tracer(const std::string& default_service_name) const;
};

}  // namespace turbine::cli

#include "cli/tracing_flags.h"

#include <spdlog/spdlog.h>

#include "trace/otlp_exporter.h"

namespace turbine::cli {

void TracingFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--otlp-traces-endpoint", otlp_traces_endpoint,
                 "Export request spans over OTLP/HTTP (JSON) to this URL, e.g. "
                 "http://collector:4318/v1/traces (default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "
                 "or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces; none: no tracing)")
      ->envname("TURBINE_OTLP_TRACES_ENDPOINT");
}

std::shared_ptr<trace::Tracer> TracingFlags::make_tracer(
    const std::string& default_service_name) const {
  const std::string endpoint = trace::traces_endpoint(otlp_traces_endpoint);
  if (!endpoint.empty()) spdlog::info("tracing: spans go to {} (OTLP/HTTP JSON)", endpoint);
  return trace::make_tracer(endpoint, default_service_name);
}

}  // namespace turbine::cli

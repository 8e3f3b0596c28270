// A fast scripted OpenAI-compatible endpoint (see src/bench/fake_server.h), for measuring what
// `turbine bench` can drive: run it on other cores than the bench, e.g.
//   taskset -c 2-5 fake_openai_server --port 9000 --threads 4 &
//   taskset -c 0 turbine bench --url http://127.0.0.1:9000 -c 64 -n 100000 --output-len 1
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "bench/fake_server.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) {
  g_stop = 1;
}
}  // namespace

int main(int argc, char** argv) {
  turbine::bench::FakeServerOptions o;
  o.port = 8000;
  CLI::App app{"Fake OpenAI endpoint: fixed TTFT and ITL, no model"};
  app.add_option("--host", o.host)->capture_default_str();
  app.add_option("--port", o.port)->capture_default_str();
  app.add_option("--threads", o.n_threads)->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--ttft-ms", o.ttft_ms, "Delay before the first token")->capture_default_str();
  app.add_option("--itl-ms", o.itl_ms, "Delay between tokens (0 with ttft 0: one write)")
      ->capture_default_str();
  app.add_option("--output-tokens", o.default_output_tokens, "Tokens when max_tokens is absent")
      ->capture_default_str();
  app.add_option("--model", o.model)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  turbine::bench::FakeOpenAiServer server(o);
  if (auto s = server.start(); !s.is_ok()) {
    std::fprintf(stderr, "fake_openai_server: %s\n", s.message().c_str());
    return 1;
  }
  std::printf("listening on http://%s:%u\n", o.host.c_str(), server.port());
  std::fflush(stdout);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  while (!g_stop) pause();
  server.stop();
  std::printf("served %llu requests\n", static_cast<unsigned long long>(server.requests_served()));
  return 0;
}

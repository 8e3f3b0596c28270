// Single-thread encode throughput of tokenizer.json tokenizers.
//
// usage: tokenizer_bench TOKENIZER_JSON [TOKENIZER_CONFIG_JSON|-] CORPUS_FILE... [--repeat N]
//        [--json]
// Each corpus file is read whole and split into ~4 KiB chunks at line ends (like requests);
// the chunks are encoded once to warm the word cache, then timed over N passes (default 3).
// Prints MB/s and tokens/s for the cold first pass and the warm passes; with --json, one JSON
// object instead (bench/tokenizer_compare.py reads it):
//   {"tokenizer","bytes","chunks","tokens","repeat","cold_s","cold_mb_s","warm_s","warm_mb_s",
//    "warm_mtok_s"}  (MB = 1e6 bytes; warm_s is the mean of the warm passes)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/hf_tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER_JSON [CONFIG|-] CORPUS... [--repeat N]\n", argv[0]);
    return 2;
  }
  std::vector<std::string> files;
  int repeat = 3;
  bool as_json = false;
  std::string config;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--repeat" && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else if (arg == "--json") {
      as_json = true;
    } else if (i == 2 && (arg == "-" || arg.find("tokenizer_config") != std::string::npos)) {
      config = arg == "-" ? "" : arg;
    } else {
      files.push_back(arg);
    }
  }
  if (repeat < 1) repeat = 1;
  auto tok = turbine::tokenizer::HfTokenizer::from_files(argv[1], config);
  if (!tok.has_value()) {
    std::fprintf(stderr, "%s\n", tok.status().to_string().c_str());
    return 1;
  }
  std::vector<std::string> chunks;
  size_t total_bytes = 0;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", f.c_str());
      return 1;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string data = ss.str();
    size_t at = 0;
    while (at < data.size()) {
      size_t end = std::min(data.size(), at + 4096);
      const size_t nl = data.find('\n', end);
      end = nl == std::string::npos ? data.size() : nl + 1;
      chunks.push_back(data.substr(at, end - at));
      at = end;
    }
    total_bytes += data.size();
  }
  const auto pass = [&](size_t& n_tokens) {
    const auto t0 = std::chrono::steady_clock::now();
    n_tokens = 0;
    for (const std::string& c : chunks) n_tokens += (*tok)->encode(c, false).size();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  size_t n_tokens = 0;
  const double cold = pass(n_tokens);
  double warm = 0;
  for (int r = 0; r < repeat; ++r) warm += pass(n_tokens);
  warm /= repeat > 0 ? repeat : 1;
  const double mb = static_cast<double>(total_bytes) / 1e6;
  if (as_json) {
    // The path is printed with %s: fine for the ASCII paths a benchmark run uses.
    std::printf(
        "{\"tokenizer\":\"%s\",\"bytes\":%zu,\"chunks\":%zu,\"tokens\":%zu,\"repeat\":%d,"
        "\"cold_s\":%.6f,\"cold_mb_s\":%.3f,\"warm_s\":%.6f,\"warm_mb_s\":%.3f,"
        "\"warm_mtok_s\":%.4f}\n",
        argv[1], total_bytes, chunks.size(), n_tokens, repeat, cold, mb / cold, warm, mb / warm,
        n_tokens / warm / 1e6);
    return 0;
  }
  std::printf("%s: %.2f MB, %zu chunks, %zu tokens\n", argv[1], mb, chunks.size(), n_tokens);
  std::printf("  cold pass: %.3f s  %.1f MB/s  %.2f Mtok/s\n", cold, mb / cold,
              n_tokens / cold / 1e6);
  std::printf("  warm pass: %.3f s  %.1f MB/s  %.2f Mtok/s\n", warm, mb / warm,
              n_tokens / warm / 1e6);
  return 0;
}

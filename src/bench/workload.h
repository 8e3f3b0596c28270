// Workloads: what each benchmark request asks for.
//
// Three sources, all reduced to a list of RequestSpec:
//  - synthetic: --input-len/--output-len (optionally normal with --*-len-std), optional shared
//    prefixes (--prefix-len, --num-prefix-groups);
//  - Mooncake traces (JSONL {"timestamp": ms, "input_length", "output_length", "hash_ids"}): each
//    hash id is one 512-token block whose text is a pure function of (seed, id), so equal ids
//    give equal text and requests that share ids share a prompt prefix;
//  - prompt files (JSONL {"prompt": "..."} or {"messages": [...]}, optional "max_tokens").
//
// Token counts of synthetic text are approximate: prompts are made of common English words, each
// preceded by a space, which the usual BPE and SentencePiece vocabularies (Llama 2/3, GPT-2/4,
// Qwen, Mistral) encode as one token each, so N words ~ N tokens (within a few percent; the chat
// template adds its own tokens on top). A tokenizer with a small vocabulary splits words, which
// BenchOptions::calibrate corrects with the server's /tokenize (words_per_token below).
//
// Prompt text is rendered when a request is sent (render_prompt), not up front: a Mooncake trace
// of 12k requests averages 12k tokens each and would need gigabytes as text.
// Pure; a Workload is immutable after load and may be read from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/options.h"
#include "common/status.h"

namespace turbine::bench {

struct RequestSpec {
  enum class Kind { kSynthetic, kMooncake, kText, kMessages } kind = Kind::kSynthetic;
  int input_tokens = 0;           // intended prompt length (approximate for text sources)
  int output_tokens = 0;          // max_tokens; 0: not sent (the server decides)
  double timestamp_ms = 0;        // Mooncake arrival time
  uint64_t seed = 0;              // kSynthetic: seed of the unique part
  int prefix_group = -1;          // kSynthetic: shared prefix index, -1: none
  std::vector<int64_t> hash_ids;  // kMooncake
  std::string text;               // kText: the prompt; kMessages: the JSON array of messages
};

struct Workload {
  std::vector<RequestSpec> requests;
  bool has_timestamps = false;  // a Mooncake trace
  int prefix_len = 0;
  uint64_t seed = 0;
  // Scale from tokens to words (1 without calibration). Set before the run starts.
  double words_per_token = 1.0;
  int block_tokens = kMooncakeBlockTokens;  // tokens rendered per Mooncake hash block
};

// Synthetic workload of `n` requests.
Workload make_synthetic(const BenchOptions& options, int n);
// Loads a JSONL file; format auto-detected from the first record unless forced.
// InvalidArgument/NotFound/DataLoss name the file and line.
Result<Workload> load_dataset(const BenchOptions& options);

// `n_tokens` words drawn from the word list with `seed`; each word starts with a space.
std::string synth_text(uint64_t seed, int n_words);

// The prompt text of a request (kMessages: not used; see request body).
std::string render_prompt(const Workload& workload, const RequestSpec& spec);

// The JSON body of the request for `api` (always streaming, with include_usage).
std::string build_request_body(const Workload& workload, const RequestSpec& spec, ApiKind api,
                               const std::string& model, bool ignore_eos);

}  // namespace turbine::bench

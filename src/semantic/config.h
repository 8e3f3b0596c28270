// SemanticConfig: the semantic stage's configuration (`--semantic-config FILE`, YAML).
//
// Every key is documented in docs/SEMANTIC.md. parse_semantic_config refuses unknown keys, wrong
// types, bad regexes, references to undeclared models or signals and out-of-range thresholds,
// with an invalid_argument Status whose field() is the key path ("decisions[2].rules.conditions[0]
// .name") and whose message says what is wrong. Defaults live in the structs. A parsed config is
// immutable; reloads parse a new one (semantic/reloader.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turbine::semantic {

// Which PII types a model accepts. Types are bare ("US_SSN"); BIO prefixes are stripped before
// matching, as the semantic router does.
struct PiiPolicy {
  bool allow_by_default = true;
  std::vector<std::string> allowed_types;  // consulted when allow_by_default is false
  std::vector<std::string> denied_types;   // consulted when allow_by_default is true
  bool allows(std::string_view bare_type) const;
};

struct ModelSpec {
  std::string name;                     // a served model name
  std::string reasoning_family;         // key of reasoning_families, "" = no reasoning control
  std::optional<PiiPolicy> pii_policy;  // pii.default_policy when absent
};

enum class ReasoningType { kChatTemplateKwargs, kReasoningEffort };
struct ReasoningFamily {
  ReasoningType type = ReasoningType::kChatTemplateKwargs;
  std::string parameter;  // "enable_thinking", "thinking", "reasoning_effort"
};

enum class KeywordOperator { kOr, kAnd, kNor };
struct KeywordSignal {
  std::string name;
  KeywordOperator op = KeywordOperator::kOr;
  bool case_sensitive = false;
  std::vector<std::string> keywords;  // words or phrases, matched on word boundaries
  std::vector<std::string> regex;     // PCRE2 patterns (UTF-8)
};

enum class Aggregation { kMax, kMean, kAny };
struct EmbeddingSignal {
  std::string name;
  float threshold = 0.75f;
  Aggregation aggregation = Aggregation::kMax;
  std::vector<std::string> candidates;
};

struct DomainSignal {
  std::string name;
  std::vector<std::string> labels;  // classifier labels that count; defaults to {name}
  float threshold = 0.6f;
};

struct LengthSignal {
  std::string name;
  int64_t min_chars = 0;  // inclusive; over the text the signals see (last user message)
  int64_t max_chars = 0;  // inclusive; 0 = no upper bound
};

enum class SignalType { kKeyword, kEmbedding, kDomain, kLength };
const char* signal_type_name(SignalType type);

// A boolean rule over signals: a leaf names one signal, an inner node combines its children.
enum class RuleOperator { kAnd, kOr, kNot };
struct Rule {
  bool leaf = false;
  SignalType type = SignalType::kKeyword;  // leaf
  std::string name;                        // leaf
  RuleOperator op = RuleOperator::kOr;     // inner; NOT takes exactly one child
  std::vector<Rule> children;
};

enum class SystemPromptMode { kInsert, kReplace };

struct DecisionCache {
  std::optional<bool> enabled;                // semantic_cache.enabled when absent
  std::optional<float> similarity_threshold;  // semantic_cache.similarity_threshold when absent
};

struct Decision {
  std::string name;
  std::string category;             // x-vsr-selected-category; the decision name when empty
  int64_t priority = 0;             // higher first; ties keep file order
  std::optional<Rule> rules;        // absent only for default_decision
  std::vector<std::string> models;  // preference order; PII policy may skip to the next
  std::optional<bool> use_reasoning;
  std::string reasoning_effort;  // reasoning_effort families; default_reasoning_effort when empty
  std::string system_prompt;
  SystemPromptMode system_prompt_mode = SystemPromptMode::kInsert;
  DecisionCache cache;
};

enum class PiiAction { kBlock, kRedact };
struct PiiConfig {
  bool enabled = true;
  PiiAction action = PiiAction::kBlock;
  // Built-in detectors to run (bare types); default: all of them.
  std::vector<std::string> types = {"US_SSN",        "CREDIT_CARD",  "IBAN_CODE",
                                    "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"};
  bool include_history = true;  // scan every message, not only the last user message
  bool model_enabled = false;   // pii.model.enabled: also run the TokenClassifier
  float model_threshold = 0.7f;
  PiiPolicy default_policy;
};

enum class JailbreakMethod { kHeuristic, kClassifier, kBoth };
struct JailbreakConfig {
  bool enabled = true;
  JailbreakMethod method = JailbreakMethod::kHeuristic;
  float threshold = 0.7f;
  bool include_history = false;  // scan earlier user messages too
  std::vector<std::string> classifier_labels = {"jailbreak", "unsafe", "injection"};
};

struct CacheConfig {
  bool enabled = false;
  bool semantic = true;  // the embedding tier (needs an embedder); false = exact match only
  float similarity_threshold = 0.9f;
  int64_t ttl_seconds = 3600;
  int64_t max_entries = 1000;
  bool literal_guard = true;  // numbers and quoted literals must match for a semantic hit
  // Per partition (tenant x model): exact search below this many entries, HNSW at and above.
  int64_t exact_search_max_entries = 2048;
  int64_t hnsw_m = 16;
  int64_t hnsw_ef_construction = 200;
  int64_t hnsw_ef_search = 64;
};

// One model behind a model-backed signal: a folder run in-process (Hugging Face layout:
// config.json, model.safetensors, tokenizer.json), or the served name of a model that encoder
// workers serve (`turbine worker --model <encoder folder>`, found through discovery by
// `turbine frontend`). A plain string in the YAML is a local folder.
struct EncoderModelRef {
  std::string model;    // the folder (local) or the served name (remote); "" = none
  bool remote = false;  // `source: remote`
  EncoderModelRef() = default;
  EncoderModelRef(std::string folder) : model(std::move(folder)) {}  // NOLINT: a folder
  bool empty() const { return model.empty(); }
  bool operator==(const EncoderModelRef&) const = default;
};

// The models of the model-backed signals and how the stage calls them. The stage itself never
// loads them: the frontend's semantic hook does (local folders once at start; remote names are
// looked up on every call), so a reload may not change this section.
struct EncoderModelsConfig {
  EncoderModelRef embedding;             // Embedder: embedding signals, the semantic cache
  EncoderModelRef domain_classifier;     // SequenceClassifier: domain signals
  EncoderModelRef jailbreak_classifier;  // SequenceClassifier: jailbreak.method classifier|both
  EncoderModelRef pii_classifier;        // TokenClassifier: pii.model
  int64_t threads = 0;                   // CPU threads per local model (0: every core)
  int64_t max_tokens = 512;              // longer inputs are truncated (the router's 512-token cap)
  // The model calls of one request run concurrently, at most this many at once (1: one after
  // the other, each only when a rule needs it).
  int64_t max_parallel_calls = 4;
  // The longest a request waits for its model calls (from its first call): a call still running
  // then counts as failed (its signal absent) and the request goes on.
  int64_t timeout_ms = 5000;
  // A remote model that no encoder worker has served this long after start is reported (an
  // error in the log; turbine_semantic_encoder_model_available stays 0).
  int64_t remote_wait_seconds = 60;
  bool has_remote() const {
    return embedding.remote || domain_classifier.remote || jailbreak_classifier.remote ||
           pii_classifier.remote;
  }
  bool operator==(const EncoderModelsConfig&) const = default;
};

struct SemanticConfig {
  std::vector<std::string> virtual_models = {"MoM", "auto"};
  bool list_real_models = true;  // /v1/models lists the real models beside the aliases
  std::string tenant_header;     // request header naming the tenant; "" = the API key
  std::vector<ModelSpec> models;
  std::map<std::string, ReasoningFamily> reasoning_families;  // defaults: qwen3, deepseek, gpt-oss
  std::string default_reasoning_effort = "high";
  std::vector<KeywordSignal> keyword_signals;
  std::vector<EmbeddingSignal> embedding_signals;
  std::vector<DomainSignal> domain_signals;
  std::vector<LengthSignal> length_signals;
  std::vector<Decision> decisions;  // sorted by priority (stable) after parsing
  std::optional<Decision> default_decision;
  PiiConfig pii;
  JailbreakConfig jailbreak;
  CacheConfig cache;
  EncoderModelsConfig encoder_models;

  const ModelSpec* find_model(std::string_view name) const;
  bool is_virtual_model(std::string_view name) const;
};

// Parses and validates YAML text. Errors: invalid_argument with field() = key path.
Result<SemanticConfig> parse_semantic_config(std::string_view yaml_text);
// Reads and parses a file (a missing or unreadable file is an error naming the path); relative
// encoder_models paths are made relative to the file's folder.
Result<SemanticConfig> load_semantic_config(const std::string& path);

}  // namespace turbine::semantic

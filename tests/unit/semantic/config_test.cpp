#include "semantic/config.h"

#include <gtest/gtest.h>

namespace turbine::semantic {
namespace {

constexpr const char* kGood = R"(
virtual_models: [MoM, auto]
tenant_header: X-Tenant
models:
  - name: qwen3-8b
    reasoning_family: qwen3
    pii_policy: {allow_by_default: false, allowed_types: [B-EMAIL_ADDRESS]}
  - name: llama
signals:
  keywords:
    - name: math_kw
      operator: OR
      keywords: [integral, derivative, "solve for"]
      regex: ['\d+\s*[+*/-]\s*\d+']
    - name: code_kw
      operator: and
      keywords: [python, function]
  length:
    - {name: long, min_chars: 2000}
decisions:
  - name: math
    priority: 10
    rules: {operator: OR, conditions: [{type: keyword, name: math_kw}]}
    models: [qwen3-8b, llama]
    use_reasoning: true
    system_prompt: "You are a math expert."
    cache: {similarity_threshold: 0.95}
  - name: code
    priority: 20
    rules:
      operator: AND
      conditions:
        - {type: keyword, name: code_kw}
        - operator: NOT
          conditions: [{type: length, name: long}]
    models: [llama]
default_decision: {models: [llama]}
pii: {action: redact, types: [US_SSN, EMAIL_ADDRESS]}
jailbreak: {threshold: 0.8}
semantic_cache: {enabled: true, ttl_seconds: 60, max_entries: 10, hnsw: {m: 8}}
)";

Status parse_error(const std::string& yaml) {
  auto r = parse_semantic_config(yaml);
  EXPECT_FALSE(r.has_value()) << yaml;
  return r.status();
}

TEST(SemanticConfig, ParsesEveryBlockAndSortsDecisionsByPriority) {
  auto r = parse_semantic_config(kGood);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  const SemanticConfig& c = *r;
  EXPECT_EQ(c.tenant_header, "x-tenant");
  ASSERT_EQ(c.models.size(), 2u);
  ASSERT_TRUE(c.models[0].pii_policy.has_value());
  EXPECT_EQ(c.models[0].pii_policy->allowed_types, std::vector<std::string>{"EMAIL_ADDRESS"});
  EXPECT_TRUE(c.models[0].pii_policy->allows("EMAIL_ADDRESS"));
  EXPECT_FALSE(c.models[0].pii_policy->allows("US_SSN"));
  ASSERT_EQ(c.decisions.size(), 2u);
  EXPECT_EQ(c.decisions[0].name, "code");  // priority 20 first
  EXPECT_EQ(c.decisions[1].name, "math");
  EXPECT_EQ(c.keyword_signals[1].op, KeywordOperator::kAnd);
  const Rule& code_rule = *c.decisions[0].rules;
  ASSERT_EQ(code_rule.children.size(), 2u);
  EXPECT_EQ(code_rule.children[1].op, RuleOperator::kNot);
  EXPECT_EQ(c.decisions[1].cache.similarity_threshold.value_or(0), 0.95f);
  ASSERT_TRUE(c.default_decision.has_value());
  EXPECT_EQ(c.default_decision->name, "default");
  EXPECT_EQ(c.pii.action, PiiAction::kRedact);
  EXPECT_EQ(c.jailbreak.threshold, 0.8f);
  EXPECT_TRUE(c.cache.enabled);
  EXPECT_EQ(c.cache.hnsw_m, 8);
  EXPECT_EQ(c.reasoning_families.at("qwen3").parameter, "enable_thinking");
  EXPECT_EQ(c.reasoning_families.at("gpt-oss").type, ReasoningType::kReasoningEffort);
}

TEST(SemanticConfig, EmptyFileIsAllDefaults) {
  auto r = parse_semantic_config("");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->virtual_models, (std::vector<std::string>{"MoM", "auto"}));
  EXPECT_TRUE(r->pii.enabled);
  EXPECT_FALSE(r->cache.enabled);
}

TEST(SemanticConfig, UnknownKeyNamesItsPath) {
  EXPECT_EQ(parse_error("pii: {actoin: block}").field(), "pii.actoin");
  EXPECT_EQ(parse_error("bogus: 1").field(), "bogus");
  Status st = parse_error(R"(
models: [{name: a}]
decisions:
  - name: d
    rules: {operator: OR, conditions: [{type: keyword, name: k, extra: 1}]}
    models: [a]
)");
  EXPECT_EQ(st.field(), "decisions[0].rules.conditions[0].extra");
  EXPECT_NE(st.message().find("unknown key"), std::string::npos);
}

TEST(SemanticConfig, BadRegexNamesItsPath) {
  Status st = parse_error(R"(
signals:
  keywords:
    - {name: ok, keywords: [a]}
    - {name: broken, regex: ['fine', '(unclosed']}
)");
  EXPECT_EQ(st.field(), "signals.keywords[1].regex[1]");
  EXPECT_NE(st.message().find("bad regex"), std::string::npos);
}

TEST(SemanticConfig, MissingModelNamesItsPath) {
  Status st = parse_error(R"(
models: [{name: real}]
decisions:
  - {name: d, rules: {operator: OR, conditions: [{type: length, name: l}]}, models: [real, ghost]}
signals: {length: [{name: l, min_chars: 1}]}
default_decision: {models: [real]}
)");
  EXPECT_EQ(st.field(), "decisions[0].models[1]");
  EXPECT_NE(st.message().find("ghost"), std::string::npos);
}

TEST(SemanticConfig, ThresholdOutOfRangeNamesItsPath) {
  EXPECT_EQ(parse_error("jailbreak: {threshold: 1.5}").field(), "jailbreak.threshold");
  EXPECT_EQ(parse_error("semantic_cache: {similarity_threshold: -0.1}").field(),
            "semantic_cache.similarity_threshold");
  EXPECT_EQ(parse_error("semantic_cache: {max_entries: 0}").field(), "semantic_cache.max_entries");
  EXPECT_EQ(parse_error("pii: {model: {threshold: 2}}").field(), "pii.model.threshold");
}

TEST(SemanticConfig, OtherRefusals) {
  EXPECT_EQ(parse_error("pii: {action: shred}").field(), "pii.action");
  EXPECT_EQ(parse_error("pii: {types: [PERSON]}").field(), "pii.types[0]");
  EXPECT_EQ(parse_error("jailbreak: {enabled: maybe}").field(), "jailbreak.enabled");
  EXPECT_EQ(parse_error("models: [{name: MoM}]").field(), "models[0].name");
  EXPECT_EQ(parse_error("models: [{name: a, reasoning_family: nope}]").field(),
            "models[0].reasoning_family");
  // A rule naming a signal that does not exist.
  EXPECT_EQ(parse_error(R"(
models: [{name: a}]
decisions: [{name: d, rules: {operator: OR, conditions: [{type: keyword, name: nope}]}, models: [a]}]
default_decision: {models: [a]}
)")
                .field(),
            "decisions[0].rules.conditions[0].name");
  // Decisions without a default for the virtual models.
  EXPECT_EQ(parse_error(R"(
models: [{name: a}]
signals: {length: [{name: l}]}
decisions: [{name: d, rules: {operator: OR, conditions: [{type: length, name: l}]}, models: [a]}]
)")
                .field(),
            "default_decision");
  // NOT with two children.
  EXPECT_EQ(parse_error(R"(
models: [{name: a}]
signals: {length: [{name: l}]}
decisions:
  - name: d
    rules: {operator: NOT, conditions: [{type: length, name: l}, {type: length, name: l}]}
    models: [a]
default_decision: {models: [a]}
)")
                .field(),
            "decisions[0].rules.conditions");
  // YAML syntax errors say where.
  Status st = parse_error("pii: [unclosed");
  EXPECT_NE(st.message().find("YAML"), std::string::npos);
}

// A model key is a folder (local) or {model_id, source}: remote names are served names, never
// made relative to the config file.
TEST(SemanticConfig, EncoderModelsLocalOrRemote) {
  auto c = parse_semantic_config(R"(
encoder_models:
  embedding: models/minilm
  domain_classifier: {model_id: category-classifier, source: remote}
  jailbreak_classifier: {model_id: models/jailbreak}
  max_parallel_calls: 2
  timeout_ms: 250
  remote_wait_seconds: 5
)");
  ASSERT_TRUE(c.has_value()) << c.status().to_string();
  const EncoderModelsConfig& e = c->encoder_models;
  EXPECT_EQ(e.embedding, EncoderModelRef("models/minilm"));
  EXPECT_FALSE(e.embedding.remote);
  EXPECT_EQ(e.domain_classifier.model, "category-classifier");
  EXPECT_TRUE(e.domain_classifier.remote);
  EXPECT_FALSE(e.jailbreak_classifier.remote);
  EXPECT_TRUE(e.pii_classifier.empty());
  EXPECT_TRUE(e.has_remote());
  EXPECT_EQ(e.max_parallel_calls, 2);
  EXPECT_EQ(e.timeout_ms, 250);
  EXPECT_EQ(e.remote_wait_seconds, 5);
  EncoderModelsConfig defaults;
  EXPECT_EQ(defaults.max_parallel_calls, 4);
  EXPECT_FALSE(defaults.has_remote());

  EXPECT_EQ(parse_error("encoder_models: {embedding: {model_id: x, source: cloud}}").field(),
            "encoder_models.embedding.source");
  EXPECT_EQ(parse_error("encoder_models: {embedding: {source: remote}}").field(),
            "encoder_models.embedding.model_id");
  EXPECT_EQ(parse_error("encoder_models: {embedding: {model_id: x, port: 1}}").field(),
            "encoder_models.embedding.port");
  EXPECT_EQ(parse_error("encoder_models: {embedding: [a]}").field(), "encoder_models.embedding");
  EXPECT_EQ(parse_error("encoder_models: {max_parallel_calls: 0}").field(),
            "encoder_models.max_parallel_calls");
  EXPECT_EQ(parse_error("encoder_models: {timeout_ms: 0}").field(), "encoder_models.timeout_ms");
}

}  // namespace
}  // namespace turbine::semantic

// The stage with models shaped like remote ones (fakes.h: answers on other threads, kUnavailable
// while no worker serves the model, answers that never come): a model that is not there makes
// its signal absent, counted, and the request goes on; embedding candidates are embedded once the
// model appears; one request's model calls run together, up to encoder_models.max_parallel_calls.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "semantic/fakes.h"
#include "semantic/stage.h"

namespace turbine::semantic {
namespace {

using Mode = FakeAnswering::Mode;

SemanticRequest request(const std::string& text, const std::string& model = "MoM") {
  SemanticRequest r;
  r.model = model;
  r.messages = {{"user", text}};
  return r;
}

std::unique_ptr<SemanticStage> make_stage(const std::string& yaml, Models models) {
  auto cfg = parse_semantic_config(yaml);
  EXPECT_TRUE(cfg.has_value()) << cfg.status().to_string();
  auto s = SemanticStage::create(*cfg, std::move(models));
  EXPECT_TRUE(s.has_value()) << s.status().to_string();
  return s.has_value() ? std::move(s).value() : nullptr;
}

constexpr const char* kDomainConfig = R"(
models: [{name: a}, {name: b}]
signals: {domains: [{name: law, labels: [law], threshold: 0.6}]}
decisions:
  - {name: legal, rules: {type: domain, name: law}, models: [b]}
  - {name: not-legal, rules: {operator: NOT, conditions: [{type: domain, name: law}]}, models: [a]}
default_decision: {name: fallback, models: [a]}
)";

TEST(StageModels, AnUnavailableClassifierMakesItsSignalAbsentAndIsCounted) {
  auto clf = FakeSequenceClassifier::keywords({{"contract", "law", 0.9f}});
  clf->answering.mode = Mode::kUnavailable;
  Models m;
  m.domain_classifier = clf;
  auto stage = make_stage(kDomainConfig, m);
  ASSERT_TRUE(stage);
  // Absent: "law" is false, so NOT(law) holds — the documented rule (a leaf over a failed call
  // is false; operators apply as usual).
  SemanticOutcome o = stage->process(request("Is this contract enforceable?"));
  EXPECT_EQ(o.kind, OutcomeKind::kPass);
  EXPECT_EQ(o.decision, "not-legal");
  EXPECT_EQ(o.model, "a");
  MetricsSnapshot s = stage->metrics();
  EXPECT_EQ(s.signal_errors["domain"], 1u);
  EXPECT_EQ((s.signal_unavailable[{"domain", "unavailable"}]), 1u);
  EXPECT_NE(prometheus_text(s).find("turbine_semantic_signal_unavailable_total{signal=\"domain\","
                                    "reason=\"unavailable\"} 1"),
            std::string::npos);

  // A worker appears: the same stage uses it, answering on another thread.
  clf->answering.mode = Mode::kThread;
  o = stage->process(request("Is this contract enforceable?"));
  EXPECT_EQ(o.decision, "legal");
  EXPECT_EQ(o.model, "b");
  EXPECT_EQ(stage->metrics().signal_errors["domain"], 1u);
}

TEST(StageModels, AModelThatDoesNotAnswerInTimeIsATimeout) {
  auto clf = FakeSequenceClassifier::keywords({{"contract", "law", 0.9f}});
  clf->answering.mode = Mode::kThread;
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  clf->answering.before_answer = [&] {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return released; });
  };
  Models m;
  m.domain_classifier = clf;
  auto stage = make_stage(std::string(kDomainConfig) + "encoder_models: {timeout_ms: 30}\n", m);
  ASSERT_TRUE(stage);
  SemanticOutcome o = stage->process(request("Is this contract enforceable?"));
  EXPECT_EQ(o.kind, OutcomeKind::kPass);
  EXPECT_EQ(o.decision, "not-legal");
  MetricsSnapshot s = stage->metrics();
  EXPECT_EQ(s.signal_errors["domain"], 1u);
  EXPECT_EQ((s.signal_unavailable[{"domain", "timeout"}]), 1u);
  {
    std::lock_guard<std::mutex> lock(mu);
    released = true;
  }
  cv.notify_all();
  clf->answering.join();  // the late answer arrives after its request finished: harmless
}

constexpr const char* kEmbeddingConfig = R"(
models: [{name: a}, {name: b}]
signals:
  embeddings: [{name: code, threshold: 0.6, candidates: ["write a python function"]}]
decisions:
  - {name: code, rules: {type: embedding, name: code}, models: [b]}
default_decision: {models: [a]}
)";

// A remote embedder that is not served at start: the stage starts anyway (the candidates wait),
// requests route without the signal, and once the model answers the candidates are embedded.
TEST(StageModels, EmbeddingCandidatesWaitForTheModel) {
  auto emb = std::make_shared<FakeEmbedder>();
  emb->answering.mode = Mode::kUnavailable;
  Models m;
  m.embedder = emb;
  auto stage = make_stage(kEmbeddingConfig, m);
  ASSERT_TRUE(stage) << "a model that is not served yet must not refuse the start";
  EXPECT_EQ(stage->process(request("write a python function please")).model, "a");
  EXPECT_GE(stage->metrics().signal_errors["embedding"], 1u);

  emb->answering.mode = Mode::kThread;
  SemanticOutcome o = stage->process(request("write a python function please"));
  EXPECT_EQ(o.decision, "code");
  EXPECT_EQ(o.model, "b");
  const int calls = emb->calls;
  EXPECT_EQ(stage->process(request("write a python function now")).model, "b");
  EXPECT_EQ(emb->calls, calls + 1) << "candidates are embedded once, then only the query";

  // warm_up() embeds them ahead of the first request (the semantic layer calls it when the
  // model appears).
  auto emb2 = std::make_shared<FakeEmbedder>();
  emb2->answering.mode = Mode::kUnavailable;
  Models m2;
  m2.embedder = emb2;
  auto stage2 = make_stage(kEmbeddingConfig, m2);
  ASSERT_TRUE(stage2);
  emb2->answering.mode = Mode::kInline;
  stage2->warm_up();
  const int before = emb2->calls;
  EXPECT_EQ(stage2->process(request("write a python function please")).model, "b");
  EXPECT_EQ(emb2->calls, before + 1);
  EXPECT_EQ(stage2->metrics().signal_errors["embedding"], 0u);
}

// A model that fails for another reason at start (not "unavailable") still refuses the start.
TEST(StageModels, AFailingEmbedderAtStartIsAConfigError) {
  auto emb = std::make_shared<FakeEmbedder>();
  emb->fail = true;
  Models m;
  m.embedder = emb;
  auto cfg = parse_semantic_config(kEmbeddingConfig);
  ASSERT_TRUE(cfg.has_value());
  auto s = SemanticStage::create(*cfg, m);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.status().field(), "signals.embeddings[0].candidates");
}

constexpr const char* kAllModels = R"(
models: [{name: a}, {name: b}]
signals:
  domains: [{name: law, labels: [law], threshold: 0.5}]
  embeddings: [{name: greet, threshold: 0.99, candidates: ["good morning to you"]}]
decisions:
  - {name: legal, priority: 2, rules: {type: domain, name: law}, models: [b]}
  - {name: greet, priority: 1, rules: {type: embedding, name: greet}, models: [a]}
default_decision: {models: [a]}
pii: {model: {threshold: 0.5}, default_policy: {allow_by_default: true}}
jailbreak: {method: both, threshold: 0.99}
semantic_cache: {enabled: true}
)";

// Every model answers only once all four calls of the request have arrived: the request can
// only get its signals if its calls run at the same time.
TEST(StageModels, OneRequestsModelCallsRunTogether) {
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  std::atomic<bool> all_met{true};
  auto meet = [&] {
    std::unique_lock<std::mutex> lock(mu);
    ++arrived;
    cv.notify_all();
    // Bounded so that a sequential stage fails the test instead of hanging it.
    if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return arrived >= 4; })) {
      all_met = false;
    }
  };
  auto emb = std::make_shared<FakeEmbedder>();
  auto domain = FakeSequenceClassifier::keywords({{"contract", "law", 0.9f}});
  auto jail = FakeSequenceClassifier::keywords({{"sneaky", "jailbreak", 0.9f}});
  auto pii = std::make_shared<FakeTokenClassifier>(
      std::vector<std::pair<std::string, std::string>>{{"Alice", "B-PERSON"}});
  Models m;
  m.embedder = emb;
  m.domain_classifier = domain;
  m.jailbreak_classifier = jail;
  m.pii_classifier = pii;
  auto stage = make_stage(kAllModels, m);  // candidates embedded inline, before the gate is set
  ASSERT_TRUE(stage);
  for (FakeAnswering* a :
       {&emb->answering, &domain->answering, &jail->answering, &pii->answering}) {
    a->mode = Mode::kThread;
    a->before_answer = meet;
  }
  SemanticRequest r = request("Alice asks: is this contract enforceable?");
  r.headers = {{"x-vsr-debug", "true"}};
  SemanticOutcome o = stage->process(r);
  EXPECT_TRUE(all_met) << "the model calls did not run at the same time";
  EXPECT_EQ(o.decision, "legal");
  bool saw_person = false;
  for (const SignalScore& s : o.signals) saw_person = saw_person || s.name == "B-PERSON";
  EXPECT_TRUE(saw_person);
  EXPECT_EQ(stage->metrics().signal_errors.size(), 0u);
  EXPECT_EQ(domain->calls, 1);
  EXPECT_EQ(jail->calls, 1);
  EXPECT_EQ(pii->calls, 1);
  for (FakeAnswering* a :
       {&emb->answering, &domain->answering, &jail->answering, &pii->answering}) {
    a->join();
  }
  EXPECT_EQ(arrived, 4);
}

// A decision settled by a keyword never calls the models its later decisions would need, one
// call at a time (max_parallel_calls: 1, each started where a rule first reads it) or together
// (prefetched: the keyword is evaluated first, model signals unknown).
TEST(StageModels, OneAtATimeAndOnlyWhenNeeded) {
  auto domain = FakeSequenceClassifier::keywords({{"contract", "law", 0.9f}});
  auto jail = FakeSequenceClassifier::keywords({});
  auto pii =
      std::make_shared<FakeTokenClassifier>(std::vector<std::pair<std::string, std::string>>{});
  for (FakeAnswering* a : {&domain->answering, &jail->answering, &pii->answering}) {
    a->mode = Mode::kThread;
  }
  Models m;
  m.domain_classifier = domain;
  m.jailbreak_classifier = jail;
  m.pii_classifier = pii;
  const std::string yaml = R"(
models: [{name: a}, {name: b}]
signals:
  keywords: [{name: urgent, keywords: [urgent]}]
  domains: [{name: law, labels: [law], threshold: 0.5}]
decisions:
  - {name: fast, priority: 9, rules: {type: keyword, name: urgent}, models: [a]}
  - {name: legal, priority: 1, rules: {type: domain, name: law}, models: [b]}
default_decision: {models: [a]}
pii: {model: {threshold: 0.5}}
jailbreak: {method: classifier}
)";
  for (const char* parallel : {"1", "4"}) {
    SCOPED_TRACE(parallel);
    auto stage = make_stage(yaml + "encoder_models: {max_parallel_calls: " + parallel + "}\n", m);
    ASSERT_TRUE(stage);
    const int domain_calls = domain->calls;
    EXPECT_EQ(stage->process(request("urgent: is this contract valid?")).decision, "fast");
    EXPECT_EQ(domain->calls, domain_calls) << "the keyword decision needs no domain call";
    EXPECT_EQ(stage->process(request("is this contract valid?")).decision, "legal");
    EXPECT_EQ(domain->calls, domain_calls + 1);
  }
  for (FakeAnswering* a : {&domain->answering, &jail->answering, &pii->answering}) a->join();
}

// Guards read every message in scope in one call per model.
TEST(StageModels, GuardsBatchTheirMessages) {
  auto jail = FakeSequenceClassifier::keywords({{"sneaky", "jailbreak", 0.95f}});
  auto pii = std::make_shared<FakeTokenClassifier>(
      std::vector<std::pair<std::string, std::string>>{{"Alice Smith", "B-PERSON"}});
  Models m;
  m.jailbreak_classifier = jail;
  m.pii_classifier = pii;
  auto stage = make_stage(R"(
models: [{name: a, pii_policy: {allow_by_default: false}}]
pii: {model: {threshold: 0.5}, action: redact}
jailbreak: {method: classifier, include_history: true}
)",
                          m);
  ASSERT_TRUE(stage);
  SemanticRequest r;
  r.model = "a";
  r.messages = {{"system", "be nice"},
                {"user", "my name is Alice Smith"},
                {"assistant", ""},
                {"user", "hello"}};
  SemanticOutcome o = stage->process(r);
  EXPECT_EQ(o.kind, OutcomeKind::kPass);
  EXPECT_EQ(jail->calls, 1);
  EXPECT_EQ(pii->calls, 1);
  ASSERT_EQ(o.redactions.size(), 1u);
  EXPECT_EQ(o.redactions[0].index, 1u);
  EXPECT_EQ(o.redactions[0].text, "my name is [PERSON]");
  r.messages[1].text = "a sneaky trick";  // an earlier user message, read with include_history
  EXPECT_EQ(stage->process(r).kind, OutcomeKind::kBlock);
  EXPECT_EQ(jail->calls, 2);
}

}  // namespace
}  // namespace turbine::semantic

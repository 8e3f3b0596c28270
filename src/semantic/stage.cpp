#include "semantic/stage.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "common/strings.h"
#include "semantic/evaluation.h"
#include "semantic/text.h"
#include "semantic/vector_index.h"

namespace turbine::semantic {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int64_t system_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string random_id(std::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id(prefix);
  id += '-';
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    for (int k = 0; k < 16; ++k) id.push_back(kHex[(v >> (k * 4)) & 0xF]);
  }
  return id;
}

std::string fmt3(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(v));
  return buf;
}

const std::string* find_header(const std::vector<Header>& headers, std::string_view name) {
  for (const Header& h : headers) {
    if (iequals(h.name, name)) return &h.value;
  }
  return nullptr;
}

std::string join(const std::vector<std::string>& v, char sep = ',') {
  std::string o;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) o += sep;
    o += v[i];
  }
  return o;
}

Status missing(const std::string& path, const std::string& what) {
  return invalid_argument("semantic config: " + path + ": " + what, path);
}

const PiiPolicy& policy_for(const SemanticConfig& c, std::string_view model) {
  const ModelSpec* m = c.find_model(model);
  return m && m->pii_policy ? *m->pii_policy : c.pii.default_policy;
}

// Labels of `found` that `policy` refuses, first-seen order, unique.
std::vector<std::string> denied_labels(const std::vector<PiiMatch>& found,
                                       const PiiPolicy& policy) {
  std::vector<std::string> out;
  for (const PiiMatch& m : found) {
    std::string label = m.label();
    if (!policy.allows(m.type) && std::find(out.begin(), out.end(), label) == out.end()) {
      out.push_back(label);
    }
  }
  return out;
}

void add_v2(std::vector<Header>& h, const char* path) {
  h.push_back({header::kSchemaVersion, "2"});
  h.push_back({header::kResponsePath, path});
}

Result<std::shared_ptr<const SemanticStage::Snapshot>> build_snapshot(const SemanticConfig& config,
                                                                      const Models& models,
                                                                      const StageOptions& opts) {
  if (!opts.served_models.empty()) {
    for (size_t i = 0; i < config.models.size(); ++i) {
      const auto& served = opts.served_models;
      if (std::find(served.begin(), served.end(), config.models[i].name) == served.end()) {
        return missing("models[" + std::to_string(i) + "].name",
                       "model '" + config.models[i].name + "' is not served");
      }
    }
  }
  if (!config.embedding_signals.empty() && !models.embedder) {
    return missing("signals.embeddings[0]", "needs an embedding model, none is configured");
  }
  if (!config.domain_signals.empty() && !models.domain_classifier) {
    return missing("signals.domains[0]", "needs a domain classifier model, none is configured");
  }
  if (config.jailbreak.enabled && config.jailbreak.method != JailbreakMethod::kHeuristic &&
      !models.jailbreak_classifier) {
    return missing("jailbreak.method", "needs a jailbreak classifier model, none is configured");
  }
  if (config.pii.enabled && config.pii.model_enabled && !models.pii_classifier) {
    return missing("pii.model.enabled", "needs a PII token-classifier model, none is configured");
  }
  auto snap = std::make_shared<SemanticStage::Snapshot>(config);
  for (size_t i = 0; i < config.keyword_signals.size(); ++i) {
    auto m = KeywordMatcher::compile(config.keyword_signals[i]);
    if (!m.has_value()) {
      return missing("signals.keywords[" + std::to_string(i) + "]", m.status().message());
    }
    snap->keywords.push_back(std::move(m).value());
  }
  for (const EmbeddingSignal& sig : config.embedding_signals) {
    snap->candidates->texts.insert(snap->candidates->texts.end(), sig.candidates.begin(),
                                   sig.candidates.end());
    snap->candidates->counts.push_back(sig.candidates.size());
  }
  if (!config.embedding_signals.empty() && snap->candidates->begin()) {
    // Embedded now when the model answers; a model that is not served yet (remote) is asked
    // again when a request or warm_up() needs the candidates.
    ModelCalls calls(1, std::chrono::milliseconds(config.encoder_models.timeout_ms));
    auto h = calls.add<Vectors>([&](ModelDone<Vectors> done) {
      models.embedder->embed(snap->candidates->texts, std::move(done));
    });
    CallInfo info;
    Result<Vectors> r = calls.get(h, &info);
    if (!r.has_value() && (info.timed_out || r.status().code() == StatusCode::kUnavailable)) {
      (void)snap->candidates->finish(r.status());
      spdlog::warn(
          "semantic: the embedding model cannot embed the embedding signals' candidates yet "
          "({}); those signals stay unmatched until it can",
          r.status().message());
    } else if (!r.has_value()) {
      return missing("signals.embeddings[0].candidates",
                     "embedding failed: " + r.status().message());
    } else if (Status st = snap->candidates->finish(std::move(r)); !st.is_ok()) {
      size_t i = 0;
      for (; i < config.embedding_signals.size(); ++i) {
        const auto& c = config.embedding_signals[i].candidates;
        if (std::any_of(c.begin(), c.end(), [&](const std::string& t) {
              return st.message().find("'" + t + "'") != std::string::npos;
            })) {
          break;
        }
      }
      return missing("signals.embeddings[" +
                         std::to_string(std::min(i, config.embedding_signals.size() - 1)) +
                         "].candidates",
                     st.message());
    }
  }
  auto may_cache = [](const Decision& d) { return d.cache.enabled && *d.cache.enabled; };
  snap->cache_may_be_on =
      config.cache.enabled ||
      std::any_of(config.decisions.begin(), config.decisions.end(), may_cache) ||
      (config.default_decision && may_cache(*config.default_decision));
  if (config.cache.enabled && config.cache.semantic && !models.embedder) {
    spdlog::warn(
        "semantic: semantic_cache.semantic is on but no embedding model is configured; "
        "the cache answers exact matches only");
  }
  return std::shared_ptr<const SemanticStage::Snapshot>(std::move(snap));
}

}  // namespace

SemanticStage::SemanticStage(Models models, StageOptions options)
    : models_(std::move(models)),
      options_(std::move(options)),
      failure_log_(std::make_unique<FailureLog>()) {
  if (!options_.unix_seconds) options_.unix_seconds = system_unix;
}

SemanticStage::~SemanticStage() = default;

Result<std::unique_ptr<SemanticStage>> SemanticStage::create(const SemanticConfig& config,
                                                             Models models, StageOptions options) {
  std::unique_ptr<SemanticStage> stage(new SemanticStage(std::move(models), std::move(options)));
  stage->encoder_models_ = config.encoder_models;
  TURBINE_ASSIGN_OR_RETURN(stage->snapshot_,
                           build_snapshot(config, stage->models_, stage->options_));
  stage->cache_ = std::make_unique<SemanticCache>(config.cache, stage->options_.clock);
  return stage;
}

std::shared_ptr<const SemanticStage::Snapshot> SemanticStage::snapshot() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return snapshot_;
}

Status SemanticStage::reload(const SemanticConfig& config) {
  Result<std::shared_ptr<const Snapshot>> snap =
      config.encoder_models == encoder_models_
          ? build_snapshot(config, models_, options_)
          : Result<std::shared_ptr<const Snapshot>>(
                missing("encoder_models",
                        "the encoder models are loaded at start; restart the "
                        "server to change them"));
  if (!snap.has_value()) {
    metrics_.reload(false);
    spdlog::error("semantic: config reload refused, keeping the previous one: {}",
                  snap.status().message());
    return snap.status();
  }
  {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    snapshot_ = std::move(snap).value();
  }
  cache_->reconfigure(config.cache);
  metrics_.reload(true);
  spdlog::info("semantic: config reloaded ({} decisions)", config.decisions.size());
  return Status::ok();
}

void SemanticStage::reload_failed(const Status& why) {
  metrics_.reload(false);
  spdlog::error("semantic: config reload refused, keeping the previous one: {}", why.message());
}

std::vector<std::string> SemanticStage::virtual_models() const {
  return snapshot()->config.virtual_models;
}
bool SemanticStage::list_real_models() const {
  return snapshot()->config.list_real_models;
}
bool SemanticStage::is_virtual_model(std::string_view name) const {
  return snapshot()->config.is_virtual_model(name);
}

SemanticOutcome SemanticStage::process(const SemanticRequest& req) {
  auto t_start = Clock::now();
  std::shared_ptr<const Snapshot> snap = snapshot();
  const SemanticConfig& cfg = snap->config;
  SemanticOutcome out;
  out.model = req.model;

  const std::string* dbg = find_header(req.headers, header::kDebug);
  bool debug = dbg != nullptr && iequals(*dbg, "true");
  const std::string* cc = find_header(req.headers, header::kCacheControl);
  bool no_cache = cc != nullptr && cc->find("no-cache") != std::string::npos;
  bool no_store = cc != nullptr && cc->find("no-store") != std::string::npos;
  std::string tenant = req.tenant;
  if (!cfg.tenant_header.empty()) {
    if (const std::string* t = find_header(req.headers, cfg.tenant_header)) tenant = *t;
  }
  size_t last_user = req.messages.size();
  for (size_t i = req.messages.size(); i-- > 0;) {
    if (req.messages[i].role == "user") {
      last_user = i;
      break;
    }
  }
  std::string_view query = last_user < req.messages.size()
                               ? std::string_view(req.messages[last_user].text)
                               : std::string_view();
  auto finish = [&](SemanticOutcome& o) -> SemanticOutcome {
    metrics_.stage_latency(seconds_since(t_start));
    return std::move(o);
  };

  // Model calls: the ones this request will or may need start now, up to max_parallel_calls at
  // once (evaluation.h); each is awaited where its result is read.
  const EncoderModelsConfig& em = cfg.encoder_models;
  ModelCalls calls(static_cast<size_t>(em.max_parallel_calls),
                   std::chrono::milliseconds(em.timeout_ms));
  const bool eager = calls.max_parallel() > 1;
  CallRecorder recorder{metrics_, *failure_log_};
  using LabelLists = std::vector<std::vector<LabelScore>>;
  using EntityLists = std::vector<std::vector<Entity>>;
  // The messages each guard reads (empty ones have nothing to find and a model refuses them).
  std::vector<size_t> jailbreak_texts, pii_texts;
  for (size_t i = 0; i < req.messages.size(); ++i) {
    if (req.messages[i].text.empty()) continue;
    if (req.messages[i].role == "user" && (cfg.jailbreak.include_history || i == last_user)) {
      jailbreak_texts.push_back(i);
    }
    if (cfg.pii.include_history || i == last_user) pii_texts.push_back(i);
  }
  auto batch = [&](const std::vector<size_t>& idx) {
    std::vector<std::string> texts;
    for (size_t i : idx) texts.push_back(req.messages[i].text);
    return texts;
  };
  std::optional<ModelCalls::Handle<LabelLists>> jailbreak_call;
  if (cfg.jailbreak.enabled && cfg.jailbreak.method != JailbreakMethod::kHeuristic &&
      models_.jailbreak_classifier && !jailbreak_texts.empty()) {
    jailbreak_call = calls.add<LabelLists>(
        [model = models_.jailbreak_classifier, texts = batch(jailbreak_texts)](
            ModelDone<LabelLists> done) { model->classify(texts, std::move(done)); });
  }
  bool is_virtual = cfg.is_virtual_model(req.model);
  Evaluation ev(*snap, models_, recorder, calls, query);
  std::optional<ModelCalls::Handle<EntityLists>> pii_call;
  auto start_pii = [&] {
    if (pii_call || !cfg.pii.enabled || !cfg.pii.model_enabled || !models_.pii_classifier ||
        pii_texts.empty()) {
      return;
    }
    pii_call = calls.add<EntityLists>(
        [model = models_.pii_classifier, texts = batch(pii_texts)](ModelDone<EntityLists> done) {
          model->classify(texts, std::move(done));
        });
  };
  if (eager) {
    if (is_virtual) ev.prefetch_for_decisions();
    start_pii();
    if (snap->cache_may_be_on && cfg.cache.semantic && (!no_cache || !no_store)) {
      ev.prefetch_embedding();
    }
  }

  // 1. Jailbreak.
  if (cfg.jailbreak.enabled) {
    float score = 0.0f;
    std::string type = "jailbreak";
    std::vector<std::string> families;
    std::optional<LabelLists> classified;  // per jailbreak_texts entry
    if (jailbreak_call) {
      CallInfo info;
      Result<LabelLists> r = calls.get(*jailbreak_call, &info);
      recorder.settle("jailbreak_model", r, info);  // fails open: the heuristic still applies
      if (r.has_value() && r->size() == jailbreak_texts.size()) {
        classified = std::move(r).value();
      } else if (r.has_value()) {
        recorder.failed("jailbreak_model", internal_error("one answer per text expected"), false);
      }
    }
    for (size_t k = 0; k < jailbreak_texts.size(); ++k) {
      const std::string& text = req.messages[jailbreak_texts[k]].text;
      if (cfg.jailbreak.method != JailbreakMethod::kClassifier) {
        auto t0 = Clock::now();
        JailbreakResult r = snap->jailbreak.score(text);
        metrics_.signal_latency("jailbreak", seconds_since(t0));
        if (r.score > score) {
          score = r.score;
          type = "jailbreak";
          families = r.families;
        }
      }
      if (!classified) continue;
      for (const LabelScore& ls : (*classified)[k]) {
        const auto& labels = cfg.jailbreak.classifier_labels;
        if (std::find(labels.begin(), labels.end(), ls.label) != labels.end() && ls.score > score) {
          score = ls.score;
          type = ls.label;
          families = {"classifier"};
        }
      }
    }
    out.signals.push_back({"jailbreak", families.empty() ? "heuristic" : join(families), score,
                           score >= cfg.jailbreak.threshold});
    if (score >= cfg.jailbreak.threshold) {
      out.kind = OutcomeKind::kBlock;
      out.response = jailbreak_block_response(type, score, req.stream, options_.unix_seconds());
      out.headers = out.response->headers;
      add_v2(out.headers, "blocked");
      if (debug) out.headers.push_back({header::kMatchedJailbreak, join(families)});
      metrics_.block("jailbreak", type);
      return finish(out);
    }
  }

  // 2. Selection.
  const Decision* decision = nullptr;
  if (is_virtual) {
    for (const Decision& d : cfg.decisions) {
      auto [m, conf] = ev.eval(*d.rules);
      if (m) {
        decision = &d;
        out.confidence = conf;
        break;
      }
    }
    if (decision == nullptr && cfg.default_decision) decision = &*cfg.default_decision;
    if (decision != nullptr) {
      out.decision = decision->name;
      out.category = decision->category.empty() ? decision->name : decision->category;
      out.model = decision->models.front();
      out.model_rewritten = true;
    }
    out.signals.insert(out.signals.end(), ev.scores.begin(), ev.scores.end());
  }

  // 3. PII.
  if (cfg.pii.enabled) {
    struct Found {
      size_t message;
      std::vector<PiiMatch> matches;
    };
    std::vector<Found> found;
    std::vector<PiiMatch> all;
    start_pii();
    std::optional<EntityLists> entities;  // per pii_texts entry
    if (pii_call) {
      CallInfo info;
      Result<EntityLists> r = calls.get(*pii_call, &info);
      recorder.settle("pii_model", r, info);  // the built-in detectors still apply
      if (r.has_value() && r->size() == pii_texts.size()) {
        entities = std::move(r).value();
      } else if (r.has_value()) {
        recorder.failed("pii_model", internal_error("one answer per text expected"), false);
      }
    }
    for (size_t k = 0; k < pii_texts.size(); ++k) {
      const size_t i = pii_texts[k];
      const std::string& text = req.messages[i].text;
      auto t0 = Clock::now();
      std::vector<PiiMatch> m = snap->pii.detect(text);
      metrics_.signal_latency("pii", seconds_since(t0));
      if (entities) {
        for (const Entity& e : (*entities)[k]) {
          std::string_view type = strip_bio_prefix(e.label);
          if (e.score < cfg.pii.model_threshold || type == "O" || type == "NO_PII" ||
              e.end > text.size() || e.begin >= e.end) {
            continue;
          }
          m.push_back({std::string(type), e.begin, e.end, e.score, true});
        }
        resolve_overlaps(m);
      }
      if (!m.empty()) {
        all.insert(all.end(), m.begin(), m.end());
        found.push_back({i, std::move(m)});
      }
    }
    for (const PiiMatch& m : all) {
      bool seen = false;
      for (const SignalScore& sc : out.signals)
        seen = seen || (sc.type == "pii" && sc.name == m.label());
      if (!seen) out.signals.push_back({"pii", m.label(), m.score, true});
    }
    if (!all.empty()) {
      std::vector<std::string> denied = denied_labels(all, policy_for(cfg, out.model));
      if (!denied.empty() && decision != nullptr) {
        // The decision's next model whose policy accepts every detected type.
        for (const std::string& alt : decision->models) {
          if (denied_labels(all, policy_for(cfg, alt)).empty()) {
            out.model = alt;
            denied.clear();
            break;
          }
        }
      }
      if (!denied.empty() && cfg.pii.action == PiiAction::kBlock) {
        out.kind = OutcomeKind::kBlock;
        out.response = pii_block_response(out.model, denied, req.stream, options_.unix_seconds());
        out.headers = out.response->headers;
        if (!out.decision.empty()) {
          out.headers.push_back({header::kSelectedDecision, out.decision});
          out.headers.push_back({header::kSelectedCategory, out.category});
        }
        add_v2(out.headers, "blocked");
        for (const std::string& l : denied) metrics_.block("pii", l);
        return finish(out);
      }
      if (!denied.empty()) {
        const PiiPolicy& policy = policy_for(cfg, out.model);
        for (Found& f : found) {
          std::vector<PiiMatch> redact;
          for (const PiiMatch& m : f.matches) {
            if (!policy.allows(m.type)) {
              redact.push_back(m);
              metrics_.redaction(m.type);
            }
          }
          if (!redact.empty()) {
            out.redactions.push_back({f.message, redact_pii(req.messages[f.message].text, redact)});
          }
        }
      }
      if (debug) {
        std::vector<std::string> labels;
        for (const PiiMatch& m : all) Evaluation::note(labels, m.label());
        out.headers.push_back({header::kMatchedPii, join(labels)});
      }
    }
  }

  // 4. Reasoning and system prompt.
  bool reasoning_on = false;
  if (decision != nullptr) {
    metrics_.decision(decision->name, out.model);
    const ModelSpec* spec = cfg.find_model(out.model);
    if (spec && !spec->reasoning_family.empty() && decision->use_reasoning) {
      const ReasoningFamily& fam = cfg.reasoning_families.at(spec->reasoning_family);
      reasoning_on = *decision->use_reasoning;
      if (fam.type == ReasoningType::kChatTemplateKwargs || reasoning_on) {
        ReasoningEdit e;
        e.type = fam.type;
        e.parameter = fam.parameter;
        e.enabled = reasoning_on;
        if (fam.type == ReasoningType::kReasoningEffort) {
          e.effort = decision->reasoning_effort.empty() ? cfg.default_reasoning_effort
                                                        : decision->reasoning_effort;
        }
        out.reasoning = std::move(e);
      }
    }
    if (!decision->system_prompt.empty()) {
      out.system_prompt = SystemPromptEdit{decision->system_prompt, decision->system_prompt_mode};
    }
  }

  // 5. Cache.
  bool cache_on = cfg.cache.enabled;
  float threshold = cfg.cache.similarity_threshold;
  if (decision != nullptr) {
    if (decision->cache.enabled) cache_on = *decision->cache.enabled;
    if (decision->cache.similarity_threshold) threshold = *decision->cache.similarity_threshold;
  }
  std::optional<float> similarity;
  if (cache_on && (!no_cache || !no_store)) {
    auto t0 = Clock::now();
    auto ticket = std::make_shared<CacheTicket>();
    CacheKey& key = ticket->key;
    key.tenant = tenant;
    key.model = out.model;
    Fingerprint exact, compat;
    for (Fingerprint* f : {&exact, &compat}) {
      f->add(req.endpoint == Endpoint::kChat ? "chat" : "completions")
          .add(out.model)
          .add(out.decision)
          .add(req.params_fingerprint);
    }
    std::string redacted_query(query);
    for (size_t i = 0; i < req.messages.size(); ++i) {
      std::string_view text = req.messages[i].text;
      for (const MessageEdit& e : out.redactions) {
        if (e.index == i) text = e.text;
      }
      if (i == last_user) redacted_query = std::string(text);
      exact.add(req.messages[i].role).add(text);
      if (i != last_user) compat.add(req.messages[i].role).add(text);
    }
    key.exact = exact.digest();
    key.compat = compat.digest();
    key.literals = extract_literals(redacted_query);
    const std::vector<float>* emb = nullptr;
    if (cfg.cache.semantic && models_.embedder) {
      // The signals embedded the original query; a redacted one is embedded afresh.
      Evaluation redacted(*snap, models_, recorder, calls, redacted_query);
      Evaluation& source = redacted_query == query ? ev : redacted;
      if (const std::vector<float>* e = source.query_embedding()) ticket->embedding = *e;
      if (!ticket->embedding.empty()) emb = &ticket->embedding;
    }
    if (!no_cache) {
      CacheLookup hit = cache_->lookup(key, emb, threshold);
      similarity = hit.best_similarity;
      out.signals.push_back({"cache", hit.hit ? (hit.hit->exact ? "exact" : "semantic") : "miss",
                             hit.best_similarity.value_or(0.0f), hit.hit.has_value()});
      metrics_.signal_latency("cache_lookup", seconds_since(t0));
      if (hit.hit) {
        out.kind = OutcomeKind::kCacheHit;
        out.cached = hit.hit->response;
        out.response =
            cache_replay_response(hit.hit->response, req.endpoint, req.stream, req.include_usage,
                                  random_id(req.endpoint == Endpoint::kChat ? "chatcmpl" : "cmpl"),
                                  options_.unix_seconds());
        out.headers = out.response->headers;
        out.headers.push_back({header::kCacheHit, "true"});
        if (!out.decision.empty()) {
          out.headers.push_back({header::kSelectedCategory, out.category});
          out.headers.push_back({header::kSelectedDecision, out.decision});
        }
        add_v2(out.headers, "cache");
        if (debug) out.headers.push_back({header::kCacheSimilarity, fmt3(hit.hit->similarity)});
        return finish(out);
      }
    }
    if (!no_store) out.ticket = std::move(ticket);
  }

  // Pass: selection headers for a routed request.
  if (is_virtual && decision != nullptr) {
    out.headers.push_back({header::kSelectedModel, out.model});
    out.headers.push_back({header::kSelectedCategory, out.category});
    out.headers.push_back({header::kSelectedDecision, out.decision});
    out.headers.push_back({header::kSelectedReasoning, reasoning_on ? "on" : "off"});
    out.headers.push_back({header::kSelectedConfidence, fmt3(out.confidence)});
    out.headers.push_back(
        {header::kInjectedSystemPrompt, out.system_prompt.has_value() ? "true" : "false"});
  }
  add_v2(out.headers, "upstream");
  if (debug) {
    if (!ev.matched_keywords.empty()) {
      out.headers.push_back({header::kMatchedKeywords, join(ev.matched_keywords)});
    }
    if (!ev.matched_embeddings.empty()) {
      out.headers.push_back({header::kMatchedEmbeddings, join(ev.matched_embeddings)});
    }
    if (!ev.matched_domains.empty()) {
      out.headers.push_back({header::kMatchedDomains, join(ev.matched_domains)});
    }
    if (!ev.matched_length.empty()) {
      out.headers.push_back({header::kMatchedContext, join(ev.matched_length)});
    }
    if (similarity) out.headers.push_back({header::kCacheSimilarity, fmt3(*similarity)});
  }
  return finish(out);
}

void SemanticStage::warm_up() {
  std::shared_ptr<const Snapshot> snap = snapshot();
  std::shared_ptr<CandidateStore> store = snap->candidates;
  if (!models_.embedder || store->texts.empty() || !store->begin()) return;
  models_.embedder->embed(store->texts, [store](Result<Vectors> r) {
    Status st = store->finish(std::move(r));
    if (st.is_ok()) {
      spdlog::info("semantic: embedding signals ready ({} candidates)", store->texts.size());
    } else {
      spdlog::warn("semantic: cannot embed the embedding signals' candidates yet: {}",
                   st.message());
    }
  });
}

void SemanticStage::store(const CacheTicket& ticket, CachedResponse response) {
  cache_->insert(ticket.key, ticket.embedding.empty() ? nullptr : &ticket.embedding,
                 std::move(response));
}

MetricsSnapshot SemanticStage::metrics() const {
  MetricsSnapshot s = metrics_.snapshot();
  CacheStats c = cache_->stats();
  s.cache_exact_hits = c.exact_hits;
  s.cache_semantic_hits = c.semantic_hits;
  s.cache_misses = c.misses;
  s.cache_literal_rejections = c.literal_rejections;
  s.cache_entries = c.entries;
  s.cache_evictions_lru = c.evictions;
  s.cache_evictions_ttl = c.expirations;
  return s;
}

}  // namespace turbine::semantic

#include "bench/workload.h"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <random>
#include <string_view>

namespace turbine::bench {
namespace json = boost::json;
namespace {

// Common English words that the Llama 2/3, GPT-2/4, Qwen and Mistral vocabularies hold as a single
// token when preceded by a space (" the", "▁the"). Lower case only: capitals split more often.
constexpr std::array<std::string_view, 200> kWords = {
    "the",     "of",      "and",      "to",      "in",     "is",        "that",    "for",
    "it",      "as",      "was",      "with",    "be",     "by",        "on",      "not",
    "he",      "this",    "are",      "or",      "his",    "from",      "at",      "which",
    "but",     "have",    "an",       "had",     "they",   "you",       "were",    "their",
    "one",     "all",     "we",       "can",     "her",    "has",       "there",   "been",
    "if",      "more",    "when",     "will",    "would",  "who",       "so",      "no",
    "time",    "people",  "year",     "way",     "day",    "man",       "thing",   "woman",
    "life",    "child",   "world",    "school",  "state",  "family",    "student", "group",
    "country", "problem", "hand",     "part",    "place",  "case",      "week",    "company",
    "system",  "program", "question", "work",    "number", "night",     "point",   "home",
    "water",   "room",    "mother",   "area",    "money",  "story",     "fact",    "month",
    "lot",     "right",   "study",    "book",    "eye",    "job",       "word",    "business",
    "issue",   "side",    "kind",     "head",    "house",  "service",   "friend",  "father",
    "power",   "hour",    "game",     "line",    "end",    "member",    "law",     "car",
    "city",    "name",    "team",     "minute",  "idea",   "body",      "back",    "face",
    "level",   "office",  "door",     "health",  "person", "art",       "war",     "history",
    "party",   "result",  "change",   "morning", "reason", "research",  "girl",    "moment",
    "air",     "teacher", "force",    "order",   "road",   "music",     "market",  "food",
    "table",   "river",   "light",    "voice",   "paper",  "field",     "green",   "small",
    "large",   "good",    "new",      "first",   "last",   "long",      "great",   "little",
    "own",     "other",   "old",      "big",     "high",   "different", "young",   "important",
    "few",     "public",  "bad",      "same",    "able",   "early",     "open",    "best",
    "sure",    "free",    "true",     "full",    "make",   "know",      "take",    "see",
    "come",    "think",   "look",     "want",    "give",   "use",       "find",    "tell",
    "ask",     "seem",    "feel",     "try",     "leave",  "call",      "keep",    "let",
};

// splitmix64: decorrelates (seed, id) pairs into independent streams.
uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr uint64_t kPrefixStream = 0x70726566ULL << 32;  // "pref"

int draw_len(std::mt19937_64& rng, int mean, double std) {
  if (std <= 0) return mean;
  std::normal_distribution<double> d(mean, std);
  return std::max(1, static_cast<int>(std::lround(d(rng))));
}

int scaled(int tokens, double words_per_token) {
  return std::max(tokens > 0 ? 1 : 0, static_cast<int>(std::lround(tokens * words_per_token)));
}

Status line_error(const std::string& file, size_t line, const std::string& msg) {
  return invalid_argument(file + ":" + std::to_string(line) + ": " + msg, "dataset");
}

Result<int64_t> get_int(const json::object& o, std::string_view key, const std::string& file,
                        size_t line) {
  const json::value* v = o.if_contains(key);
  if (!v) return line_error(file, line, "missing \"" + std::string(key) + "\"");
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  if (v->is_double() && std::floor(v->as_double()) == v->as_double()) {
    return static_cast<int64_t>(v->as_double());
  }
  return line_error(file, line, "\"" + std::string(key) + "\" must be an integer");
}

}  // namespace

std::string synth_text(uint64_t seed, int n_words) {
  std::string out;
  out.reserve(static_cast<size_t>(std::max(n_words, 0)) * 7);
  uint64_t state = seed;
  for (int i = 0; i < n_words; ++i) {
    state = mix(state, static_cast<uint64_t>(i));
    out.push_back(' ');
    out.append(kWords[state % kWords.size()]);
  }
  return out;
}

Workload make_synthetic(const BenchOptions& options, int n) {
  Workload w;
  w.prefix_len = options.prefix_len;
  w.seed = options.seed;
  std::mt19937_64 rng(options.seed);
  w.requests.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    RequestSpec r;
    r.kind = RequestSpec::Kind::kSynthetic;
    r.input_tokens = draw_len(rng, options.input_len, options.input_len_std);
    r.output_tokens = draw_len(rng, options.output_len, options.output_len_std);
    r.seed = mix(options.seed, 1'000'000'007ULL + static_cast<uint64_t>(i));
    if (options.prefix_len > 0) r.prefix_group = i % options.num_prefix_groups;
    w.requests.push_back(std::move(r));
  }
  return w;
}

Result<Workload> load_dataset(const BenchOptions& options) {
  const std::string& file = options.dataset;
  std::ifstream in(file);
  if (!in) return not_found("cannot open dataset " + file, "dataset");
  Workload w;
  w.seed = options.seed;
  w.block_tokens = options.trace_block_tokens;
  DatasetFormat format = options.dataset_format;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) return line_error(file, line_no, "not a JSON object");
    const json::object& o = v.as_object();
    if (format == DatasetFormat::kAuto) {
      format = o.contains("hash_ids") || o.contains("input_length") ? DatasetFormat::kMooncake
                                                                    : DatasetFormat::kPrompts;
    }
    RequestSpec r;
    if (format == DatasetFormat::kMooncake) {
      r.kind = RequestSpec::Kind::kMooncake;
      TURBINE_ASSIGN_OR_RETURN(int64_t in_len, get_int(o, "input_length", file, line_no));
      TURBINE_ASSIGN_OR_RETURN(int64_t out_len, get_int(o, "output_length", file, line_no));
      if (in_len < 1 || out_len < 1 || in_len > 10'000'000 || out_len > 10'000'000) {
        return line_error(file, line_no, "input_length/output_length out of range");
      }
      // A scaled replay (--trace-block-tokens) shrinks both lengths with the blocks.
      const auto scale = [&](int64_t n) {
        return static_cast<int>(std::max<int64_t>(
            1, (n * options.trace_block_tokens + kMooncakeBlockTokens / 2) / kMooncakeBlockTokens));
      };
      r.input_tokens = scale(in_len);
      r.output_tokens = scale(out_len);
      if (o.contains("timestamp")) {
        TURBINE_ASSIGN_OR_RETURN(int64_t ts, get_int(o, "timestamp", file, line_no));
        r.timestamp_ms = static_cast<double>(ts);
      }
      if (const json::value* ids = o.if_contains("hash_ids")) {
        if (!ids->is_array()) return line_error(file, line_no, "\"hash_ids\" must be an array");
        for (const json::value& id : ids->as_array()) {
          if (id.is_int64()) {
            r.hash_ids.push_back(id.as_int64());
          } else if (id.is_uint64()) {
            r.hash_ids.push_back(static_cast<int64_t>(id.as_uint64()));
          } else {
            return line_error(file, line_no, "\"hash_ids\" must hold integers");
          }
        }
      }
      r.seed = mix(options.seed, 0xabcdefULL + line_no);
      w.has_timestamps = true;
    } else {
      if (const json::value* p = o.if_contains("prompt"); p && p->is_string()) {
        r.kind = RequestSpec::Kind::kText;
        r.text = std::string(p->as_string());
      } else if (const json::value* m = o.if_contains("messages"); m && m->is_array()) {
        if (m->as_array().empty()) return line_error(file, line_no, "\"messages\" is empty");
        r.kind = RequestSpec::Kind::kMessages;
        r.text = json::serialize(*m);
      } else {
        return line_error(file, line_no,
                          "expected {\"prompt\": string} or {\"messages\": [...]} per line");
      }
      r.output_tokens = options.output_len;
      for (std::string_view key : {"max_tokens", "output_len", "output_length"}) {
        if (o.contains(key)) {
          TURBINE_ASSIGN_OR_RETURN(int64_t n, get_int(o, key, file, line_no));
          if (n < 1) return line_error(file, line_no, std::string(key) + " must be >= 1");
          r.output_tokens = static_cast<int>(std::min<int64_t>(n, 10'000'000));
        }
      }
    }
    w.requests.push_back(std::move(r));
  }
  if (w.requests.empty())
    return invalid_argument("dataset " + file + " holds no requests", "dataset");
  return w;
}

std::string render_prompt(const Workload& w, const RequestSpec& r) {
  switch (r.kind) {
    case RequestSpec::Kind::kText:
    case RequestSpec::Kind::kMessages: return r.text;
    case RequestSpec::Kind::kSynthetic: {
      std::string out;
      if (r.prefix_group >= 0 && w.prefix_len > 0) {
        out = synth_text(mix(w.seed, kPrefixStream + static_cast<uint64_t>(r.prefix_group)),
                         scaled(w.prefix_len, w.words_per_token));
      }
      out += synth_text(r.seed, scaled(r.input_tokens, w.words_per_token));
      return out;
    }
    case RequestSpec::Kind::kMooncake: {
      std::string out;
      int left = r.input_tokens;
      for (int64_t id : r.hash_ids) {
        if (left <= 0) break;
        int n = std::min(left, w.block_tokens);
        // Same id -> same word stream, so a shorter (final) block is a prefix of the full one.
        out += synth_text(mix(w.seed, static_cast<uint64_t>(id)), scaled(n, w.words_per_token));
        left -= n;
      }
      if (left > 0) out += synth_text(r.seed, scaled(left, w.words_per_token));
      return out;
    }
  }
  return {};
}

std::string build_request_body(const Workload& w, const RequestSpec& r, ApiKind api,
                               const std::string& model, bool ignore_eos) {
  json::object body;
  body["model"] = model;
  if (api == ApiKind::kChat) {
    if (r.kind == RequestSpec::Kind::kMessages) {
      boost::system::error_code ec;
      json::value m = json::parse(r.text, ec);
      body["messages"] = ec ? json::value(json::array()) : std::move(m);
    } else {
      json::object msg;
      msg["role"] = "user";
      msg["content"] = render_prompt(w, r);
      body["messages"] = json::array{std::move(msg)};
    }
  } else {
    if (r.kind == RequestSpec::Kind::kMessages) {
      // A completions endpoint takes text: the message contents, one per line.
      std::string prompt;
      boost::system::error_code ec;
      json::value m = json::parse(r.text, ec);
      if (!ec && m.is_array()) {
        for (const json::value& msg : m.as_array()) {
          const json::value* c = msg.is_object() ? msg.as_object().if_contains("content") : nullptr;
          if (c && c->is_string()) {
            if (!prompt.empty()) prompt += "\n";
            prompt += c->as_string();
          }
        }
      }
      body["prompt"] = prompt;
    } else {
      body["prompt"] = render_prompt(w, r);
    }
  }
  if (r.output_tokens > 0) body["max_tokens"] = r.output_tokens;
  if (ignore_eos) body["ignore_eos"] = true;
  body["stream"] = true;
  body["stream_options"] = json::object{{"include_usage", true}};
  return json::serialize(body);
}

}  // namespace turbine::bench

#include "api/embeddings.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>

#include "api/codec_util.h"
#include "api/json_writer.h"

namespace turbine::api {
namespace {

namespace json = boost::json;

Status read_model_field(const json::object& obj, std::string& out) {
  const json::value* v = find_field(obj, "model");
  if (v == nullptr) return Status::ok();
  TURBINE_ASSIGN_OR_RETURN(out, read_string(*v, "model"));
  return Status::ok();
}

Status read_truncation(const json::object& obj, Truncation& out) {
  const json::value* v = find_field(obj, "truncate_prompt_tokens");
  if (v == nullptr) return Status::ok();
  TURBINE_ASSIGN_OR_RETURN(
      int64_t n, read_int(*v, "truncate_prompt_tokens", -1, std::numeric_limits<int32_t>::max()));
  if (n == 0) {
    return invalid_argument("truncate_prompt_tokens must be -1 (the model's maximum) or >= 1",
                            "truncate_prompt_tokens");
  }
  if (n == -1) {
    out.to_max = true;
  } else {
    out.tokens = static_cast<int>(n);
  }
  return Status::ok();
}

// A string, or a non-empty array of strings.
Result<std::vector<std::string>> read_texts(const json::value& v, const std::string& param) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.emplace_back(v.get_string().data(), v.get_string().size());
    return out;
  }
  if (!v.is_array()) return type_error(param, "a string or an array of strings", v);
  const json::array& a = v.get_array();
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string()) {
      return type_error(param + "[" + std::to_string(i) + "]", "a string", a[i]);
    }
    out.emplace_back(a[i].get_string().data(), a[i].get_string().size());
  }
  return out;
}

Result<std::vector<int32_t>> read_ids(const json::array& a, const std::string& param) {
  std::vector<int32_t> ids;
  ids.reserve(a.size());
  for (const json::value& e : a) {
    TURBINE_ASSIGN_OR_RETURN(int64_t id,
                             read_int(e, param, 0, std::numeric_limits<int32_t>::max()));
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

Status reject_if_set(const json::object& obj, std::string_view key, std::string_view why) {
  const json::value* v = find_field(obj, key);
  if (v == nullptr) return Status::ok();
  return invalid_argument(std::string(key) + " is not supported" + std::string(why),
                          std::string(key));
}

void append_usage(std::string& out, const PoolingUsage& usage, bool classify) {
  out += "\"usage\":{\"prompt_tokens\":";
  append_json_int(out, usage.prompt_tokens);
  out += ",\"total_tokens\":";
  append_json_int(out, usage.prompt_tokens);
  if (classify) out += ",\"completion_tokens\":0,\"prompt_tokens_details\":null";
  out += '}';
}

void append_head(std::string& out, std::string_view id, int64_t created, std::string_view model) {
  out += "{\"id\":";
  append_json_string(out, id);
  out += ",\"object\":\"list\",\"created\":";
  append_json_int(out, created);
  out += ",\"model\":";
  append_json_string(out, model);
}

}  // namespace

Result<EmbeddingsRequest> parse_embeddings_request(std::string_view body) {
  TURBINE_ASSIGN_OR_RETURN(json::object obj, parse_json_object(body));
  EmbeddingsRequest req;
  TURBINE_RETURN_IF_ERROR(read_model_field(obj, req.model));
  const json::value* in = find_field(obj, "input");
  if (in == nullptr) return invalid_argument("input is required", "input");
  if (in->is_string()) {
    req.texts.emplace_back(in->get_string().data(), in->get_string().size());
  } else if (in->is_array()) {
    const json::array& a = in->get_array();
    if (a.empty()) return invalid_argument("input must not be empty", "input");
    if (a[0].is_string()) {
      TURBINE_ASSIGN_OR_RETURN(req.texts, read_texts(*in, "input"));
    } else if (a[0].is_array()) {
      for (size_t i = 0; i < a.size(); ++i) {
        const std::string param = "input[" + std::to_string(i) + "]";
        if (!a[i].is_array()) return type_error(param, "an array of token ids", a[i]);
        TURBINE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, read_ids(a[i].get_array(), param));
        req.token_inputs.push_back(std::move(ids));
      }
    } else if (a[0].is_number()) {
      TURBINE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, read_ids(a, "input"));
      req.token_inputs.push_back(std::move(ids));
    } else {
      return type_error("input[0]", "a string, a token id or an array of token ids", a[0]);
    }
  } else {
    return type_error("input", "a string, an array of strings or an array of token ids", *in);
  }
  if (const json::value* v = find_field(obj, "encoding_format")) {
    TURBINE_ASSIGN_OR_RETURN(std::string f, read_string(*v, "encoding_format"));
    if (f == "base64") {
      req.base64 = true;
    } else if (f != "float") {
      return invalid_argument("encoding_format must be 'float' or 'base64', not '" + f + "'",
                              "encoding_format");
    }
  }
  if (const json::value* v = find_field(obj, "dimensions")) {
    TURBINE_ASSIGN_OR_RETURN(int64_t d,
                             read_int(*v, "dimensions", 1, std::numeric_limits<int32_t>::max()));
    req.dimensions = static_cast<int>(d);
  }
  TURBINE_RETURN_IF_ERROR(read_truncation(obj, req.truncation));
  if (const json::value* v = find_field(obj, "normalize")) {
    TURBINE_ASSIGN_OR_RETURN(bool n, read_bool(*v, "normalize"));
    req.normalize = n;
  }
  if (const json::value* v = find_field(obj, "add_special_tokens")) {
    TURBINE_ASSIGN_OR_RETURN(bool add, read_bool(*v, "add_special_tokens"));
    if (!add) {
      return invalid_argument(
          "add_special_tokens false is not supported (send token ids to control them)",
          "add_special_tokens");
    }
  }
  if (const json::value* v = find_field(obj, "user")) {
    TURBINE_RETURN_IF_ERROR(read_string(*v, "user").status());
  }
  return req;
}

Result<ClassifyRequest> parse_classify_request(std::string_view body) {
  TURBINE_ASSIGN_OR_RETURN(json::object obj, parse_json_object(body));
  ClassifyRequest req;
  TURBINE_RETURN_IF_ERROR(read_model_field(obj, req.model));
  const json::value* in = find_field(obj, "input");
  if (in == nullptr) return invalid_argument("input is required", "input");
  TURBINE_ASSIGN_OR_RETURN(req.texts, read_texts(*in, "input"));
  if (req.texts.empty()) return invalid_argument("input must not be empty", "input");
  TURBINE_RETURN_IF_ERROR(read_truncation(obj, req.truncation));
  if (const json::value* v = find_field(obj, "user")) {
    TURBINE_RETURN_IF_ERROR(read_string(*v, "user").status());
  }
  return req;
}

Result<RerankRequest> parse_rerank_request(std::string_view body) {
  TURBINE_ASSIGN_OR_RETURN(json::object obj, parse_json_object(body));
  RerankRequest req;
  TURBINE_RETURN_IF_ERROR(read_model_field(obj, req.model));
  const json::value* q = find_field(obj, "query");
  if (q == nullptr) return invalid_argument("query is required", "query");
  TURBINE_ASSIGN_OR_RETURN(req.query, read_string(*q, "query"));
  const json::value* docs = find_field(obj, "documents");
  if (docs == nullptr) return invalid_argument("documents is required", "documents");
  if (!docs->is_array()) return type_error("documents", "an array", *docs);
  const json::array& a = docs->get_array();
  if (a.empty()) return invalid_argument("documents must not be empty", "documents");
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string param = "documents[" + std::to_string(i) + "]";
    if (a[i].is_string()) {
      req.documents.emplace_back(a[i].get_string().data(), a[i].get_string().size());
    } else if (a[i].is_object()) {
      // Cohere v1 and Jina accept {"text": ...}.
      const json::value* t = find_field(a[i].get_object(), "text");
      if (t == nullptr) return invalid_argument(param + " has no text", param);
      TURBINE_ASSIGN_OR_RETURN(std::string text, read_string(*t, param + ".text"));
      req.documents.push_back(std::move(text));
    } else {
      return type_error(param, "a string or an object with text", a[i]);
    }
  }
  if (const json::value* v = find_field(obj, "top_n")) {
    TURBINE_ASSIGN_OR_RETURN(int64_t n,
                             read_int(*v, "top_n", 0, std::numeric_limits<int32_t>::max()));
    req.top_n = static_cast<int>(n);
  }
  if (const json::value* v = find_field(obj, "return_documents")) {
    TURBINE_ASSIGN_OR_RETURN(req.return_documents, read_bool(*v, "return_documents"));
  }
  TURBINE_RETURN_IF_ERROR(read_truncation(obj, req.truncation));
  TURBINE_RETURN_IF_ERROR(reject_if_set(obj, "max_chunks_per_doc", " (documents are not chunked)"));
  TURBINE_RETURN_IF_ERROR(reject_if_set(obj, "rank_fields", " (send documents as text)"));
  return req;
}

Result<ScoreRequest> parse_score_request(std::string_view body) {
  TURBINE_ASSIGN_OR_RETURN(json::object obj, parse_json_object(body));
  ScoreRequest req;
  TURBINE_RETURN_IF_ERROR(read_model_field(obj, req.model));
  for (const char* key : {"text_1", "text_2"}) {
    const json::value* v = find_field(obj, key);
    if (v == nullptr) return invalid_argument(std::string(key) + " is required", key);
    TURBINE_ASSIGN_OR_RETURN(std::vector<std::string> texts, read_texts(*v, key));
    if (texts.empty()) return invalid_argument(std::string(key) + " must not be empty", key);
    (key[5] == '1' ? req.text_1 : req.text_2) = std::move(texts);
  }
  if (req.text_1.size() != 1 && req.text_1.size() != req.text_2.size()) {
    return invalid_argument("text_1 must be one text or as many as text_2 (" +
                                std::to_string(req.text_2.size()) + "), not " +
                                std::to_string(req.text_1.size()),
                            "text_1");
  }
  TURBINE_RETURN_IF_ERROR(read_truncation(obj, req.truncation));
  return req;
}

std::string base64_floats(const float* v, size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* b = reinterpret_cast<const uint8_t*>(v);  // little-endian hosts (x86-64, arm64)
  const size_t len = n * sizeof(float);
  std::string out;
  out.reserve((len + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    const uint32_t w = (uint32_t{b[i]} << 16) | (uint32_t{b[i + 1]} << 8) | b[i + 2];
    out += kAlphabet[(w >> 18) & 63];
    out += kAlphabet[(w >> 12) & 63];
    out += kAlphabet[(w >> 6) & 63];
    out += kAlphabet[w & 63];
  }
  if (i < len) {
    uint32_t w = uint32_t{b[i]} << 16;
    if (i + 1 < len) w |= uint32_t{b[i + 1]} << 8;
    out += kAlphabet[(w >> 18) & 63];
    out += kAlphabet[(w >> 12) & 63];
    out += i + 1 < len ? kAlphabet[(w >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string embeddings_response(std::string_view id, int64_t created, std::string_view model,
                                const std::vector<std::vector<float>>& vectors, bool base64,
                                const PoolingUsage& usage) {
  std::string out;
  size_t floats = 0;
  for (const auto& v : vectors) floats += v.size();
  out.reserve(128 + vectors.size() * 64 + floats * (base64 ? 6 : 14));
  append_head(out, id, created, model);
  out += ",\"data\":[";
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (i) out += ',';
    out += "{\"index\":";
    append_json_int(out, static_cast<int64_t>(i));
    out += ",\"object\":\"embedding\",\"embedding\":";
    if (base64) {
      out += '"';
      out += base64_floats(vectors[i].data(), vectors[i].size());
      out += '"';
    } else {
      out += '[';
      for (size_t j = 0; j < vectors[i].size(); ++j) {
        if (j) out += ',';
        append_json_float(out, vectors[i][j]);
      }
      out += ']';
    }
    out += '}';
  }
  out += "],";
  append_usage(out, usage, false);
  out += '}';
  return out;
}

std::string classify_response(std::string_view id, int64_t created, std::string_view model,
                              const std::vector<ClassifyItem>& items, const PoolingUsage& usage) {
  std::string out;
  append_head(out, id, created, model);
  out += ",\"data\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    const ClassifyItem& it = items[i];
    if (i) out += ',';
    out += "{\"index\":";
    append_json_int(out, static_cast<int64_t>(i));
    if (it.token_level) {
      out += ",\"entities\":[";
      for (size_t k = 0; k < it.entities.size(); ++k) {
        const EntitySpan& e = it.entities[k];
        if (k) out += ',';
        out += "{\"entity_group\":";
        append_json_string(out, e.entity_group);
        out += ",\"score\":";
        append_json_float(out, e.score);
        out += ",\"word\":";
        append_json_string(out, e.word);
        out += ",\"start\":";
        append_json_int(out, e.start);
        out += ",\"end\":";
        append_json_int(out, e.end);
        out += '}';
      }
      out += ']';
    } else {
      out += ",\"label\":";
      append_json_string(out, it.label);
      out += ",\"probs\":[";
      for (size_t k = 0; k < it.probs.size(); ++k) {
        if (k) out += ',';
        append_json_float(out, it.probs[k]);
      }
      out += "],\"num_classes\":";
      append_json_int(out, static_cast<int64_t>(it.probs.size()));
    }
    out += '}';
  }
  out += "],";
  append_usage(out, usage, true);
  out += '}';
  return out;
}

std::vector<RerankResult> rank(const std::vector<float>& scores, int top_n) {
  std::vector<RerankResult> out;
  out.reserve(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) out.push_back({static_cast<int>(i), scores[i]});
  std::stable_sort(out.begin(), out.end(), [](const RerankResult& a, const RerankResult& b) {
    return a.relevance_score > b.relevance_score;
  });
  if (top_n > 0 && static_cast<size_t>(top_n) < out.size()) out.resize(static_cast<size_t>(top_n));
  return out;
}

std::string rerank_response(std::string_view id, std::string_view model,
                            const std::vector<RerankResult>& results,
                            const std::vector<std::string>& documents, bool return_documents,
                            const PoolingUsage& usage) {
  std::string out = "{\"id\":";
  append_json_string(out, id);
  out += ",\"model\":";
  append_json_string(out, model);
  out += ',';
  append_usage(out, usage, false);
  out += ",\"results\":[";
  for (size_t i = 0; i < results.size(); ++i) {
    const RerankResult& r = results[i];
    if (i) out += ',';
    out += "{\"index\":";
    append_json_int(out, r.index);
    out += ",\"relevance_score\":";
    append_json_float(out, r.relevance_score);
    if (return_documents && static_cast<size_t>(r.index) < documents.size()) {
      out += ",\"document\":{\"text\":";
      append_json_string(out, documents[static_cast<size_t>(r.index)]);
      out += '}';
    }
    out += '}';
  }
  out += "]}";
  return out;
}

std::string score_response(std::string_view id, int64_t created, std::string_view model,
                           const std::vector<float>& scores, const PoolingUsage& usage) {
  std::string out;
  append_head(out, id, created, model);
  out += ",\"data\":[";
  for (size_t i = 0; i < scores.size(); ++i) {
    if (i) out += ',';
    out += "{\"index\":";
    append_json_int(out, static_cast<int64_t>(i));
    out += ",\"object\":\"score\",\"score\":";
    append_json_float(out, scores[i]);
    out += '}';
  }
  out += "],";
  append_usage(out, usage, false);
  out += '}';
  return out;
}

}  // namespace turbine::api

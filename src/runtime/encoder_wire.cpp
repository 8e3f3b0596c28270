#include "runtime/encoder_wire.h"

#include <bit>
#include <cstring>

namespace turbine::runtime {
namespace {

static_assert(std::endian::native == std::endian::little, "the wire format is little-endian");

using encoder::EncoderOp;

class Out {
 public:
  template <typename T>
  void raw(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s.append(b, sizeof(T));
  }
  void count(size_t n) { raw(static_cast<uint32_t>(n)); }
  void str(std::string_view v) {
    count(v.size());
    s.append(v);
  }
  template <typename T>
  void vec(const std::vector<T>& v) {
    count(v.size());
    if (!v.empty()) s.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  void strs(const std::vector<std::string>& v) {
    count(v.size());
    for (const std::string& x : v) str(x);
  }
  std::string s;
};

class In {
 public:
  explicit In(std::string_view b) : b_(b) {}
  template <typename T>
  bool raw(T& v) {
    if (b_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  // A count of elements of at least `min_bytes` each that the bytes left can hold.
  bool count(uint32_t& n, size_t min_bytes) {
    return raw(n) && static_cast<uint64_t>(n) * min_bytes <= b_.size() - pos_;
  }
  bool str(std::string& v) {
    uint32_t n = 0;
    if (!count(n, 1)) return false;
    v.assign(b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  template <typename T>
  bool vec(std::vector<T>& v) {
    uint32_t n = 0;
    if (!count(n, sizeof(T))) return false;
    v.resize(n);
    if (n) std::memcpy(v.data(), b_.data() + pos_, size_t{n} * sizeof(T));
    pos_ += size_t{n} * sizeof(T);
    return true;
  }
  bool strs(std::vector<std::string>& v) {
    uint32_t n = 0;
    if (!count(n, 4)) return false;
    v.resize(n);
    for (std::string& x : v) {
      if (!str(x)) return false;
    }
    return true;
  }
  bool at_end() const { return pos_ == b_.size(); }

 private:
  std::string_view b_;
  size_t pos_ = 0;
};

enum class Kind : uint8_t { kEmbeddings = 1, kLabels = 2, kEntities = 3, kScores = 4 };

Status bad(const char* what) {
  return internal_error(std::string("malformed encoder frame body: ") + what);
}

bool read_status_code(In& in, StatusCode& code) {
  uint8_t c = 0;
  if (!in.raw(c) || c > static_cast<uint8_t>(StatusCode::kDataLoss)) return false;
  code = static_cast<StatusCode>(c);
  return true;
}

}  // namespace

std::string encode_encoder_request(const encoder::EncoderRequest& r) {
  Out o;
  o.raw(static_cast<uint8_t>(r.op));
  const encoder::EncodeOptions& opt = r.options;
  uint8_t flags = 0;
  if (opt.truncate) flags |= 1;
  if (opt.normalize.has_value()) flags |= 2;
  if (opt.normalize.value_or(false)) flags |= 4;
  o.raw(flags);
  o.raw(static_cast<int32_t>(opt.truncate_tokens));
  o.raw(static_cast<int32_t>(opt.dimensions));
  o.str(r.input_field);
  o.str(r.query_field);
  o.strs(r.texts);
  o.strs(r.queries);
  o.count(r.token_inputs.size());
  for (const auto& ids : r.token_inputs) o.vec(ids);
  return std::move(o.s);
}

Result<encoder::EncoderRequest> decode_encoder_request(std::string_view body) {
  In in(body);
  encoder::EncoderRequest r;
  uint8_t op = 0, flags = 0;
  int32_t truncate_tokens = 0, dimensions = 0;
  uint32_t n = 0;
  if (!in.raw(op) || !in.raw(flags) || !in.raw(truncate_tokens) || !in.raw(dimensions) ||
      !in.str(r.input_field) || !in.str(r.query_field) || !in.strs(r.texts) ||
      !in.strs(r.queries) || !in.count(n, 4)) {
    return invalid_argument("malformed encode request");
  }
  if (op < 1 || op > 4 || flags > 7) return invalid_argument("malformed encode request op");
  r.op = static_cast<EncoderOp>(op);
  r.options.truncate = (flags & 1) != 0;
  if (flags & 2) r.options.normalize = (flags & 4) != 0;
  r.options.truncate_tokens = truncate_tokens;
  r.options.dimensions = dimensions;
  r.token_inputs.resize(n);
  for (auto& ids : r.token_inputs) {
    if (!in.vec(ids)) return invalid_argument("malformed encode request token ids");
  }
  if (!in.at_end()) return invalid_argument("malformed encode request: trailing bytes");
  return r;
}

std::string encode_encoder_response(const Result<encoder::EncoderResponse>& response) {
  Out o;
  const Status st = response.status();
  o.raw(static_cast<uint8_t>(st.code()));
  o.str(st.message());
  o.str(st.field());
  if (!response.has_value()) return std::move(o.s);
  const encoder::EncoderResponse& r = *response;
  if (!r.embeddings.empty()) {
    o.raw(Kind::kEmbeddings);
    o.count(r.embeddings.size());
    for (const encoder::Embedding& e : r.embeddings) {
      o.vec(e.vector);
      o.raw(static_cast<int32_t>(e.n_tokens));
    }
  } else if (!r.classifications.empty()) {
    o.raw(Kind::kLabels);
    o.count(r.classifications.size());
    for (const encoder::Classification& c : r.classifications) {
      o.count(c.labels.size());
      for (const encoder::LabelScore& l : c.labels) {
        o.raw(l.id);
        o.str(l.label);
        o.raw(l.probability);
        o.raw(l.logit);
      }
      o.raw(c.top);
      o.raw(static_cast<int32_t>(c.n_tokens));
    }
  } else if (!r.token_classifications.empty()) {
    o.raw(Kind::kEntities);
    o.count(r.token_classifications.size());
    for (const encoder::TokenClassification& t : r.token_classifications) {
      o.count(t.entities.size());
      for (const encoder::Entity& e : t.entities) {
        o.str(e.label);
        o.raw(e.score);
        o.str(e.word);
        o.raw(e.start);
        o.raw(e.end);
        o.raw(e.byte_start);
        o.raw(e.byte_end);
      }
      o.count(t.tokens.size());
      for (const encoder::TokenPrediction& p : t.tokens) {
        o.raw(p.token_id);
        o.raw(p.label_id);
        o.raw(p.score);
        o.raw(static_cast<uint32_t>(p.bytes.begin));
        o.raw(static_cast<uint32_t>(p.bytes.end));
      }
      o.raw(static_cast<int32_t>(t.n_tokens));
    }
  } else {
    o.raw(Kind::kScores);
    o.count(r.scores.size());
    for (const encoder::Relevance& s : r.scores) {
      o.raw(s.score);
      o.raw(s.logit);
      o.raw(static_cast<int32_t>(s.n_tokens));
    }
  }
  return std::move(o.s);
}

Result<encoder::EncoderResponse> decode_encoder_response(std::string_view body) {
  In in(body);
  StatusCode code = StatusCode::kOk;
  std::string message, field;
  if (!read_status_code(in, code) || !in.str(message) || !in.str(field)) return bad("status");
  if (code != StatusCode::kOk) {
    if (!in.at_end()) return bad("trailing bytes");
    return Status(code, std::move(message), std::move(field));
  }
  encoder::EncoderResponse r;
  uint8_t kind = 0;
  uint32_t n = 0;
  if (!in.raw(kind) || !in.count(n, 4)) return bad("kind");
  int32_t n_tokens = 0;
  switch (static_cast<Kind>(kind)) {
    case Kind::kEmbeddings:
      r.embeddings.resize(n);
      for (encoder::Embedding& e : r.embeddings) {
        if (!in.vec(e.vector) || !in.raw(n_tokens)) return bad("embedding");
        e.n_tokens = n_tokens;
      }
      break;
    case Kind::kLabels:
      r.classifications.resize(n);
      for (encoder::Classification& c : r.classifications) {
        uint32_t k = 0;
        if (!in.count(k, 16)) return bad("labels");
        c.labels.resize(k);
        for (encoder::LabelScore& l : c.labels) {
          if (!in.raw(l.id) || !in.str(l.label) || !in.raw(l.probability) || !in.raw(l.logit))
            return bad("label");
        }
        if (!in.raw(c.top) || !in.raw(n_tokens)) return bad("classification");
        if (c.top < 0 || static_cast<size_t>(c.top) >= c.labels.size()) return bad("top label");
        c.n_tokens = n_tokens;
      }
      break;
    case Kind::kEntities:
      r.token_classifications.resize(n);
      for (encoder::TokenClassification& t : r.token_classifications) {
        uint32_t k = 0;
        if (!in.count(k, 28)) return bad("entities");
        t.entities.resize(k);
        for (encoder::Entity& e : t.entities) {
          if (!in.str(e.label) || !in.raw(e.score) || !in.str(e.word) || !in.raw(e.start) ||
              !in.raw(e.end) || !in.raw(e.byte_start) || !in.raw(e.byte_end))
            return bad("entity");
        }
        if (!in.count(k, 20)) return bad("tokens");
        t.tokens.resize(k);
        for (encoder::TokenPrediction& p : t.tokens) {
          uint32_t b = 0, e = 0;
          if (!in.raw(p.token_id) || !in.raw(p.label_id) || !in.raw(p.score) || !in.raw(b) ||
              !in.raw(e))
            return bad("token");
          p.bytes.begin = b;
          p.bytes.end = e;
        }
        if (!in.raw(n_tokens)) return bad("token classification");
        t.n_tokens = n_tokens;
      }
      break;
    case Kind::kScores:
      r.scores.resize(n);
      for (encoder::Relevance& s : r.scores) {
        if (!in.raw(s.score) || !in.raw(s.logit) || !in.raw(n_tokens)) return bad("score");
        s.n_tokens = n_tokens;
      }
      break;
    default: return bad("kind");
  }
  if (!in.at_end()) return bad("trailing bytes");
  return r;
}

}  // namespace turbine::runtime

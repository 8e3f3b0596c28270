#include "runtime/wire.h"

#include <bit>
#include <cstring>

#include <boost/json.hpp>

namespace turbine::runtime {
namespace {

static_assert(std::endian::native == std::endian::little, "the wire format is little-endian");

class Writer {
 public:
  explicit Writer(std::string& out, FrameType type) : out_(out), start_(out.size()) {
    out_.append(kFrameHeaderBytes, '\0');
    u8(kWireVersion);
    u8(static_cast<uint8_t>(type));
  }
  ~Writer() {
    const auto len = static_cast<uint32_t>(out_.size() - start_ - kFrameHeaderBytes);
    std::memcpy(out_.data() + start_, &len, sizeof len);
  }
  template <typename T>
  void raw(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out_.append(b, sizeof(T));
  }
  void u8(uint8_t v) { raw(v); }
  void str(const std::string& s) {
    raw(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void ids(const std::vector<int32_t>& v) {
    raw(static_cast<uint32_t>(v.size()));
    if (!v.empty()) out_.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  }

 private:
  std::string& out_;
  size_t start_;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : b_(b) {}
  template <typename T>
  bool raw(T& v) {
    if (b_.size() - pos_ < sizeof(T)) return fail();
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool count(uint32_t& n, size_t elem_bytes) {
    if (!raw(n)) return false;
    if (static_cast<uint64_t>(n) * elem_bytes > b_.size() - pos_) return fail();
    return true;
  }
  bool str(std::string& s) {
    uint32_t n = 0;
    if (!count(n, 1)) return false;
    s.assign(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  bool ids(std::vector<int32_t>& v) {
    uint32_t n = 0;
    if (!count(n, 4)) return false;
    v.resize(n);
    if (n) std::memcpy(v.data(), b_.data() + pos_, size_t{n} * 4);
    pos_ += size_t{n} * 4;
    return true;
  }
  bool at_end() const { return pos_ == b_.size(); }
  bool ok() const { return ok_; }

 private:
  bool fail() {
    ok_ = false;
    return false;
  }
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
  bool ok_ = true;
};

void write_meta(Writer& w, const engine::KvTransferMeta& m) {
  w.raw(m.transfer_id);
  w.raw(m.instance_id);
  w.str(m.address);
  w.str(m.layout.dtype);
  w.raw(static_cast<int32_t>(m.layout.block_size));
  w.raw(static_cast<int32_t>(m.layout.n_layers));
  w.raw(static_cast<int32_t>(m.layout.n_kv_heads));
  w.raw(static_cast<int32_t>(m.layout.head_dim));
  w.raw(m.layout.bytes_per_block);
  w.raw(static_cast<int32_t>(m.num_tokens));
  w.ids(m.block_ids);
  w.raw(static_cast<uint32_t>(m.block_hashes.size()));
  for (uint64_t h : m.block_hashes) w.raw(h);
  w.str(m.device_pool);
}

bool read_meta(Reader& r, std::shared_ptr<const engine::KvTransferMeta>& out) {
  auto m = std::make_shared<engine::KvTransferMeta>();
  int32_t bs = 0, layers = 0, heads = 0, hd = 0, num = 0;
  uint32_t n = 0;
  if (!r.raw(m->transfer_id) || !r.raw(m->instance_id) || !r.str(m->address) ||
      !r.str(m->layout.dtype) || !r.raw(bs) || !r.raw(layers) || !r.raw(heads) || !r.raw(hd) ||
      !r.raw(m->layout.bytes_per_block) || !r.raw(num) || !r.ids(m->block_ids) || !r.count(n, 8))
    return false;
  m->block_hashes.resize(n);
  for (uint64_t& h : m->block_hashes) {
    if (!r.raw(h)) return false;
  }
  if (!r.str(m->device_pool)) return false;
  m->layout.block_size = bs;
  m->layout.n_layers = layers;
  m->layout.n_kv_heads = heads;
  m->layout.head_dim = hd;
  m->num_tokens = num;
  out = std::move(m);
  return true;
}

// tokens[]: u32 count, then {i32 token, f32 logprob, {i32, f32}[] top}; read_tokens reads the
// `n` entries after a count its caller read.
void write_tokens(Writer& w, const std::vector<engine::SampledToken>& tokens) {
  w.raw(static_cast<uint32_t>(tokens.size()));
  for (const engine::SampledToken& t : tokens) {
    w.raw(t.token);
    w.raw(t.logprob);
    w.raw(static_cast<uint32_t>(t.top_logprobs.size()));
    for (const auto& [id, lp] : t.top_logprobs) {
      w.raw(id);
      w.raw(lp);
    }
  }
}
bool read_tokens(Reader& r, uint32_t n, std::vector<engine::SampledToken>& tokens) {
  tokens.resize(n);
  for (engine::SampledToken& t : tokens) {
    uint32_t k = 0;
    if (!r.raw(t.token) || !r.raw(t.logprob) || !r.count(k, 8)) return false;
    t.top_logprobs.resize(k);
    for (auto& [id, lp] : t.top_logprobs) {
      if (!r.raw(id) || !r.raw(lp)) return false;
    }
  }
  return true;
}

Status malformed(const char* what) {
  return {StatusCode::kInvalidArgument, std::string("malformed request-plane frame: ") + what};
}

bool read_params(Reader& r, engine::SamplingParams& p) {
  uint8_t has_seed = 0, ignore_eos = 0;
  uint64_t seed = 0;
  bool ok = r.raw(p.temperature) && r.raw(p.top_p) && r.raw(p.top_k) && r.raw(p.min_p) &&
            r.raw(has_seed) && r.raw(seed) && r.raw(p.presence_penalty) &&
            r.raw(p.frequency_penalty) && r.raw(p.repetition_penalty) && r.raw(p.max_tokens) &&
            r.raw(p.min_tokens) && r.raw(ignore_eos) && r.ids(p.stop_token_ids) &&
            r.raw(p.n_logprobs);
  uint32_t n_bias = 0;
  if (!ok || !r.count(n_bias, 8)) return false;
  p.logit_bias.resize(n_bias);
  for (auto& [id, bias] : p.logit_bias) {
    if (!r.raw(id) || !r.raw(bias)) return false;
  }
  if (!r.raw(p.prompt_group)) return false;
  uint8_t kind = 0;
  ok = ok && r.raw(kind) && r.str(p.constraint.text) && r.raw(p.constraint_replay);
  if (!ok || kind > static_cast<uint8_t>(structured::ConstraintSpec::Kind::kGrammar)) return false;
  // --- wire version 7: the constraint's start trigger (reasoning models). ---
  structured::StartTrigger& start = p.constraint.start;
  if (!r.ids(start.end) || !r.ids(start.open) || start.end.size() > structured::kMaxTriggerIds ||
      start.open.size() > structured::kMaxTriggerIds)
    return false;
  p.constraint.kind = static_cast<structured::ConstraintSpec::Kind>(kind);
  if (has_seed) p.seed = seed;
  p.ignore_eos = ignore_eos != 0;
  return true;
}

}  // namespace

void encode(const RequestFrame& f, std::string& out) {
  Writer w(out, FrameType::kRequest);
  const engine::SamplingParams& p = f.params;
  w.raw(f.id);
  w.ids(f.prompt);
  w.raw(p.temperature);
  w.raw(p.top_p);
  w.raw(p.top_k);
  w.raw(p.min_p);
  w.u8(p.seed.has_value() ? 1 : 0);
  w.raw(p.seed.value_or(0));
  w.raw(p.presence_penalty);
  w.raw(p.frequency_penalty);
  w.raw(p.repetition_penalty);
  w.raw(p.max_tokens);
  w.raw(p.min_tokens);
  w.u8(p.ignore_eos ? 1 : 0);
  w.ids(p.stop_token_ids);
  w.raw(p.n_logprobs);
  w.raw(static_cast<uint32_t>(p.logit_bias.size()));
  for (const auto& [id, bias] : p.logit_bias) {
    w.raw(id);
    w.raw(bias);
  }
  w.raw(p.prompt_group);
  w.u8(static_cast<uint8_t>(p.constraint.kind));
  w.str(p.constraint.text);
  w.raw(p.constraint_replay);
  // --- wire version 7 ---
  w.ids(p.constraint.start.end);
  w.ids(p.constraint.start.open);
  w.raw(f.trace.trace_id);
  w.raw(f.trace.span_id);
  w.u8(f.trace.flags);
  // --- wire version 6 (prompt logprobs): flag 4 adds an i32 after the import section. ---
  // --- wire version 8 (priority classes): flag 8 adds an i32 after that. ---
  const bool prompt_lp = p.prompt_logprobs >= 0;
  const bool priority = p.priority != 0;
  if (f.disagg.prefill_only || f.disagg.import || prompt_lp || priority) {
    w.u8(static_cast<uint8_t>((f.disagg.prefill_only ? 1 : 0) | (f.disagg.import ? 2 : 0) |
                              (prompt_lp ? 4 : 0) | (priority ? 8 : 0)));
    if (f.disagg.import) write_meta(w, *f.disagg.import);
    if (prompt_lp) w.raw(static_cast<int32_t>(p.prompt_logprobs));
    if (priority) w.raw(static_cast<int32_t>(p.priority));
  }
}

void encode(const KvPullFrame& f, std::string& out) {
  Writer w(out, FrameType::kKvPull);
  w.raw(f.id);
  w.raw(f.transfer_id);
  w.raw(f.first_block);
  w.raw(f.n_blocks);
}

void encode(const KvDataFrame& f, std::string& out) {
  Writer w(out, FrameType::kKvData);
  w.raw(f.id);
  w.u8(static_cast<uint8_t>(f.status.code()));
  w.str(f.status.message());
  w.str(f.bytes);
}

void encode(const KvReleaseFrame& f, std::string& out) {
  Writer w(out, FrameType::kKvRelease);
  w.raw(f.transfer_id);
}

void encode(const HelloFrame& f, std::string& out) {
  Writer w(out, FrameType::kHello);
  w.str(f.token);
}

void encode(const PingFrame& f, std::string& out) {
  Writer w(out, FrameType::kPing);
  w.raw(f.nonce);
}

void encode(const PongFrame& f, std::string& out) {
  Writer w(out, FrameType::kPong);
  w.raw(f.nonce);
}

void encode(const CloseFrame& f, std::string& out) {
  Writer w(out, FrameType::kClose);
  w.u8(static_cast<uint8_t>(f.status.code()));
  w.str(f.status.message());
}

void encode(const EncodeRequestFrame& f, std::string& out) {
  Writer w(out, FrameType::kEncodeRequest);
  w.raw(f.id);
  w.str(f.body);
}

void encode(const EncodeResponseFrame& f, std::string& out) {
  Writer w(out, FrameType::kEncodeResponse);
  w.raw(f.id);
  w.str(f.body);
}

bool tokens_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

void encode(const CancelFrame& f, std::string& out) {
  Writer w(out, FrameType::kCancel);
  w.raw(f.id);
  w.u8(f.stop ? 1 : 0);
}

void encode(const OutputFrame& f, std::string& out) {
  Writer w(out, FrameType::kOutput);
  const engine::EngineOutput& o = f.output;
  w.raw(f.id);
  w.u8(static_cast<uint8_t>(o.finish));
  w.raw(static_cast<int32_t>(o.prompt_tokens));
  w.raw(static_cast<int32_t>(o.completion_tokens));
  w.raw(static_cast<int32_t>(o.cached_tokens));
  w.u8(static_cast<uint8_t>(o.error.code()));
  w.str(o.error.message());
  w.str(o.error.field());
  write_tokens(w, o.tokens);
  if (o.kv_transfer) {
    w.u8(1);
    write_meta(w, *o.kv_transfer);
  }
  // --- wire version 6 (prompt logprobs): section 2, after the KV transfer section. ---
  if (!o.prompt_logprobs.empty()) {
    w.u8(2);
    write_tokens(w, o.prompt_logprobs);
  }
}

// Appends every whole frame at the front of `buf` to `frames` and drops their bytes.
Status take_frames(std::string& buf, std::vector<Frame>& frames) {
  size_t pos = 0;
  while (true) {
    std::span<const uint8_t> rest(reinterpret_cast<const uint8_t*>(buf.data()) + pos,
                                  buf.size() - pos);
    auto size = frame_size(rest);
    if (!size) return size.status();
    if (*size == 0) break;
    auto frame = decode(rest.first(*size));
    if (!frame) return frame.status();
    frames.push_back(std::move(*frame));
    pos += *size;
  }
  buf.erase(0, pos);
  return Status::ok();
}

Result<size_t> frame_size(std::span<const uint8_t> buf) {
  if (buf.size() < kFrameHeaderBytes) return size_t{0};
  uint32_t len = 0;
  std::memcpy(&len, buf.data(), sizeof len);
  if (len > kMaxFrameBytes) {
    return Status(StatusCode::kInvalidArgument,
                  "request-plane frame of " + std::to_string(len) + " bytes is over the limit");
  }
  if (buf.size() - kFrameHeaderBytes < len) return size_t{0};
  return kFrameHeaderBytes + len;
}

Result<Frame> decode(std::span<const uint8_t> frame) {
  if (frame.size() < kFrameHeaderBytes + 2) return malformed("too short");
  Reader r(frame.subspan(kFrameHeaderBytes));
  uint8_t version = 0, type = 0;
  (void)r.raw(version);
  (void)r.raw(type);
  if (version < kOldestReadableWireVersion || version > kWireVersion) {
    return Status(StatusCode::kInvalidArgument, "request-plane version " + std::to_string(version) +
                                                    ", expected " +
                                                    std::to_string(kOldestReadableWireVersion) +
                                                    ".." + std::to_string(kWireVersion));
  }
  switch (static_cast<FrameType>(type)) {
    case FrameType::kRequest: {
      RequestFrame f;
      if (!r.raw(f.id) || !r.ids(f.prompt) || !read_params(r, f.params) ||
          !r.raw(f.trace.trace_id) || !r.raw(f.trace.span_id) || !r.raw(f.trace.flags))
        return malformed("request");
      if (!r.at_end()) {
        uint8_t flags = 0;
        // Flag 8 (priority) exists from version 8 on.
        const uint8_t max_flags = version >= 8 ? 15 : 7;
        if (!r.raw(flags) || flags == 0 || flags > max_flags)
          return malformed("request disagg flags");
        f.disagg.prefill_only = (flags & 1) != 0;
        if ((flags & 2) != 0 && !read_meta(r, f.disagg.import))
          return malformed("request KV import");
        // --- wire version 6 (prompt logprobs) ---
        int32_t k = -1;
        if ((flags & 4) != 0 && (!r.raw(k) || k < 0)) return malformed("request prompt logprobs");
        f.params.prompt_logprobs = k;
        // --- wire version 8 (priority classes) ---
        int32_t priority = 0;
        if ((flags & 8) != 0 && (!r.raw(priority) || priority == 0))
          return malformed("request priority");
        f.params.priority = priority;
      }
      if (!r.at_end()) return malformed("request trailing bytes");
      return Frame(std::move(f));
    }
    case FrameType::kCancel: {
      CancelFrame f;
      uint8_t stop = 0;
      if (!r.raw(f.id) || !r.raw(stop) || stop > 1 || !r.at_end()) return malformed("cancel");
      f.stop = stop == 1;
      return Frame(f);
    }
    case FrameType::kOutput: {
      OutputFrame f;
      engine::EngineOutput& o = f.output;
      uint8_t finish = 0, code = 0;
      int32_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
      std::string message, field;
      uint32_t n = 0;
      if (!r.raw(f.id) || !r.raw(finish) || !r.raw(prompt_tokens) || !r.raw(completion_tokens) ||
          !r.raw(cached_tokens) || !r.raw(code) || !r.str(message) || !r.str(field) ||
          !r.count(n, 12)) {
        return malformed("output");
      }
      if (finish > static_cast<uint8_t>(engine::FinishReason::kError) ||
          code > static_cast<uint8_t>(StatusCode::kDataLoss)) {
        return malformed("output enum");
      }
      o.finish = static_cast<engine::FinishReason>(finish);
      o.prompt_tokens = prompt_tokens;
      o.completion_tokens = completion_tokens;
      o.cached_tokens = cached_tokens;
      if (code != 0) o.error = Status(static_cast<StatusCode>(code), message, field);
      if (!read_tokens(r, n, o.tokens)) return malformed("token");
      // Optional sections in order: 1 KV transfer, 2 prompt logprobs (version 6).
      uint8_t section = 0;
      if (!r.at_end() && (!r.raw(section) || section < 1 || section > 2))
        return malformed("output section");
      if (section == 1) {
        if (!read_meta(r, o.kv_transfer)) return malformed("output KV transfer");
        section = 0;
        if (!r.at_end() && (!r.raw(section) || section != 2)) return malformed("output section");
      }
      if (section == 2) {
        uint32_t m = 0;
        if (!r.count(m, 12) || !read_tokens(r, m, o.prompt_logprobs))
          return malformed("output prompt logprobs");
      }
      if (!r.at_end()) return malformed("trailing bytes");
      return Frame(std::move(f));
    }
    case FrameType::kKvPull: {
      KvPullFrame f;
      if (!r.raw(f.id) || !r.raw(f.transfer_id) || !r.raw(f.first_block) || !r.raw(f.n_blocks) ||
          !r.at_end())
        return malformed("kv pull");
      return Frame(f);
    }
    case FrameType::kKvData: {
      KvDataFrame f;
      uint8_t code = 0;
      std::string message;
      if (!r.raw(f.id) || !r.raw(code) || !r.str(message) || !r.str(f.bytes) || !r.at_end())
        return malformed("kv data");
      if (code > static_cast<uint8_t>(StatusCode::kDataLoss)) return malformed("kv data code");
      if (code != 0) f.status = Status(static_cast<StatusCode>(code), message);
      return Frame(std::move(f));
    }
    case FrameType::kKvRelease: {
      KvReleaseFrame f;
      if (!r.raw(f.transfer_id) || !r.at_end()) return malformed("kv release");
      return Frame(f);
    }
    case FrameType::kHello: {
      HelloFrame f;
      if (!r.str(f.token) || !r.at_end()) return malformed("hello");
      return Frame(std::move(f));
    }
    case FrameType::kPing: {
      PingFrame f;
      if (!r.raw(f.nonce) || !r.at_end()) return malformed("ping");
      return Frame(f);
    }
    case FrameType::kPong: {
      PongFrame f;
      if (!r.raw(f.nonce) || !r.at_end()) return malformed("pong");
      return Frame(f);
    }
    case FrameType::kClose: {
      CloseFrame f;
      uint8_t code = 0;
      std::string message;
      if (!r.raw(code) || !r.str(message) || !r.at_end()) return malformed("close");
      if (code > static_cast<uint8_t>(StatusCode::kDataLoss)) return malformed("close code");
      f.status = Status(static_cast<StatusCode>(code), message);
      return Frame(std::move(f));
    }
    case FrameType::kEncodeRequest: {
      EncodeRequestFrame f;
      if (!r.raw(f.id) || !r.str(f.body) || !r.at_end()) return malformed("encode request");
      return Frame(std::move(f));
    }
    case FrameType::kEncodeResponse: {
      EncodeResponseFrame f;
      if (!r.raw(f.id) || !r.str(f.body) || !r.at_end()) return malformed("encode response");
      return Frame(std::move(f));
    }
  }
  return malformed("unknown type");
}

// ---- event plane ---------------------------------------------------------------------------

namespace {
namespace json = boost::json;

json::array hashes(const std::vector<uint64_t>& v) {
  json::array a;
  for (uint64_t h : v) a.emplace_back(h);
  return a;
}

bool get_u64(const json::value& v, uint64_t& out) {
  if (v.is_uint64()) {
    out = v.get_uint64();
  } else if (v.is_int64() && v.get_int64() >= 0) {
    out = static_cast<uint64_t>(v.get_int64());
  } else {
    return false;
  }
  return true;
}

bool get_int(const json::object& o, const char* k, int& out) {
  const json::value* v = o.if_contains(k);
  if (!v || !v->is_int64()) return false;
  out = static_cast<int>(v->get_int64());
  return true;
}
// The optional storage_tier of a KV event (absent: the device, as version-1 events are).
bool get_storage_tier(const json::object& o, uint8_t& out) {
  const json::value* v = o.if_contains("storage_tier");
  if (v == nullptr) return true;
  int t = 0;
  if (!get_int(o, "storage_tier", t) || t < kv::kStorageDevice || t > kv::kStorageDisk)
    return false;
  out = static_cast<uint8_t>(t);
  return true;
}
}  // namespace

std::string kv_event_to_json(uint64_t instance_id, const kv::KvEvent& e) {
  json::object o;
  o["worker_id"] = instance_id;
  o["version"] = e.version;
  o["event_id"] = e.event_id;
  json::object data;
  if (const auto* s = std::get_if<kv::BlockStored>(&e.data)) {
    json::object st;
    if (s->parent_hash) st["parent_hash"] = *s->parent_hash;
    json::array blocks;
    for (const kv::StoredBlock& b : s->blocks) {
      blocks.emplace_back(
          json::object{{"block_hash", b.block_hash}, {"tokens_hash", b.tokens_hash}});
    }
    st["blocks"] = std::move(blocks);
    json::array toks;
    for (int32_t t : s->token_ids) toks.emplace_back(t);
    st["token_ids"] = std::move(toks);
    st["block_size"] = s->block_size;
    if (s->storage_tier != kv::kStorageDevice)
      st["storage_tier"] = static_cast<int64_t>(s->storage_tier);
    data["stored"] = std::move(st);
  } else if (const auto* r = std::get_if<kv::BlockRemoved>(&e.data)) {
    json::object rm{{"block_hashes", hashes(r->block_hashes)}};
    if (r->storage_tier != kv::kStorageDevice)
      rm["storage_tier"] = static_cast<int64_t>(r->storage_tier);
    data["removed"] = std::move(rm);
  } else {
    data["cleared"] = json::object{};
  }
  o["data"] = std::move(data);
  return json::serialize(o);
}

Result<std::pair<uint64_t, kv::KvEvent>> kv_event_from_json(std::string_view text) {
  const Status bad = invalid_argument("malformed KV event");
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return bad;
  const json::object& o = v.get_object();
  uint64_t worker = 0, version = 0;
  kv::KvEvent e;
  const json::value* w = o.if_contains("worker_id");
  const json::value* ver = o.if_contains("version");
  const json::value* id = o.if_contains("event_id");
  const json::value* d = o.if_contains("data");
  if (!w || !ver || !id || !d || !d->is_object() || !get_u64(*w, worker) ||
      !get_u64(*ver, version) || !get_u64(*id, e.event_id)) {
    return bad;
  }
  e.version = static_cast<uint32_t>(version);
  const json::object& data = d->get_object();
  if (const json::value* s = data.if_contains("stored"); s && s->is_object()) {
    const json::object& so = s->get_object();
    kv::BlockStored st;
    if (const json::value* p = so.if_contains("parent_hash")) {
      uint64_t ph = 0;
      if (!get_u64(*p, ph)) return bad;
      st.parent_hash = ph;
    }
    const json::value* blocks = so.if_contains("blocks");
    const json::value* toks = so.if_contains("token_ids");
    if (!blocks || !blocks->is_array() || !toks || !toks->is_array() ||
        !get_int(so, "block_size", st.block_size)) {
      return bad;
    }
    for (const json::value& b : blocks->get_array()) {
      if (!b.is_object()) return bad;
      const json::value* bh = b.get_object().if_contains("block_hash");
      const json::value* th = b.get_object().if_contains("tokens_hash");
      kv::StoredBlock sb;
      if (!bh || !th || !get_u64(*bh, sb.block_hash) || !get_u64(*th, sb.tokens_hash)) return bad;
      st.blocks.push_back(sb);
    }
    for (const json::value& t : toks->get_array()) {
      if (!t.is_int64()) return bad;
      st.token_ids.push_back(static_cast<int32_t>(t.get_int64()));
    }
    if (!get_storage_tier(so, st.storage_tier)) return bad;
    e.data = std::move(st);
  } else if (const json::value* r = data.if_contains("removed"); r && r->is_object()) {
    const json::value* hs = r->get_object().if_contains("block_hashes");
    if (!hs || !hs->is_array()) return bad;
    kv::BlockRemoved rm;
    for (const json::value& h : hs->get_array()) {
      uint64_t x = 0;
      if (!get_u64(h, x)) return bad;
      rm.block_hashes.push_back(x);
    }
    if (!get_storage_tier(r->get_object(), rm.storage_tier)) return bad;
    e.data = std::move(rm);
  } else if (data.if_contains("cleared")) {
    e.data = kv::AllBlocksCleared{};
  } else {
    return bad;
  }
  return std::make_pair(worker, std::move(e));
}

std::string load_to_json(const WorkerLoad& l) {
  json::object o{{"worker_id", l.instance_id},
                 {"running", l.running},
                 {"waiting", l.waiting},
                 {"kv_used_blocks", l.kv_used_blocks},
                 {"kv_total_blocks", l.kv_total_blocks}};
  return json::serialize(o);
}

Result<WorkerLoad> load_from_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return invalid_argument("malformed load message");
  const json::object& o = v.get_object();
  WorkerLoad l;
  const json::value* w = o.if_contains("worker_id");
  if (!w || !get_u64(*w, l.instance_id) || !get_int(o, "running", l.running) ||
      !get_int(o, "waiting", l.waiting) || !get_int(o, "kv_used_blocks", l.kv_used_blocks) ||
      !get_int(o, "kv_total_blocks", l.kv_total_blocks)) {
    return invalid_argument("malformed load message");
  }
  return l;
}

}  // namespace turbine::runtime

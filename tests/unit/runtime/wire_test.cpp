#include "runtime/wire.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/component.h"
#include "runtime/model_card.h"

namespace turbine::runtime {
namespace {

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Frame round_trip(const std::string& encoded) {
  auto size = frame_size(bytes(encoded));
  EXPECT_TRUE(size.has_value());
  EXPECT_EQ(*size, encoded.size());
  auto f = decode(bytes(encoded));
  EXPECT_TRUE(f.has_value()) << f.status().to_string();
  return *f;
}

TEST(Wire, RequestRoundTripsEverySamplingField) {
  RequestFrame r;
  r.id = 0xfedcba9876543210ull;
  r.prompt = {1, 2, 3, -4, 2147483647};
  auto& p = r.params;
  p.temperature = 0.7f;
  p.top_p = 0.9f;
  p.top_k = 40;
  p.min_p = 0.05f;
  p.seed = 0xffffffffffffffffull;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = -0.25f;
  p.repetition_penalty = 1.1f;
  p.max_tokens = 123;
  p.min_tokens = 7;
  p.ignore_eos = true;
  p.stop_token_ids = {2, 13};
  p.n_logprobs = 5;
  p.logit_bias = {{3, -100.0f}, {17, 2.5f}};
  p.prompt_group = 0xfeedface12345678ull;
  std::string buf;
  encode(r, buf);
  const Frame frame = round_trip(buf);
  const auto* got = std::get_if<RequestFrame>(&frame);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->id, r.id);
  EXPECT_EQ(got->prompt, r.prompt);
  const auto& q = got->params;
  EXPECT_EQ(q.temperature, p.temperature);
  EXPECT_EQ(q.top_p, p.top_p);
  EXPECT_EQ(q.top_k, p.top_k);
  EXPECT_EQ(q.min_p, p.min_p);
  EXPECT_EQ(q.seed, p.seed);
  EXPECT_EQ(q.presence_penalty, p.presence_penalty);
  EXPECT_EQ(q.frequency_penalty, p.frequency_penalty);
  EXPECT_EQ(q.repetition_penalty, p.repetition_penalty);
  EXPECT_EQ(q.max_tokens, p.max_tokens);
  EXPECT_EQ(q.min_tokens, p.min_tokens);
  EXPECT_EQ(q.ignore_eos, p.ignore_eos);
  EXPECT_EQ(q.stop_token_ids, p.stop_token_ids);
  EXPECT_EQ(q.n_logprobs, p.n_logprobs);
  EXPECT_EQ(q.logit_bias, p.logit_bias);
  EXPECT_EQ(q.prompt_group, p.prompt_group);

  // No seed stays no seed.
  r.params.seed.reset();
  buf.clear();
  encode(r, buf);
  EXPECT_FALSE(std::get<RequestFrame>(round_trip(buf)).params.seed.has_value());
}

TEST(Wire, RequestCarriesTheOutputConstraint) {
  RequestFrame r;
  r.id = 9;
  r.prompt = {1, 2, 3};
  for (auto kind :
       {structured::ConstraintSpec::Kind::kJsonSchema,
        structured::ConstraintSpec::Kind::kJsonObject, structured::ConstraintSpec::Kind::kRegex,
        structured::ConstraintSpec::Kind::kChoice, structured::ConstraintSpec::Kind::kGrammar}) {
    r.params.constraint = {kind, R"({"type":"object","properties":{"ü":{"const":"\u0000"}}})"};
    r.params.constraint_replay = 2;
    std::string buf;
    encode(r, buf);
    const auto got = std::get<RequestFrame>(round_trip(buf));
    EXPECT_EQ(got.params.constraint, r.params.constraint);
    EXPECT_EQ(got.params.constraint_replay, 2);
  }
  // Unconstrained stays unconstrained.
  r.params.constraint = {};
  r.params.constraint_replay = 0;
  std::string buf;
  encode(r, buf);
  EXPECT_FALSE(std::get<RequestFrame>(round_trip(buf)).params.constraint.active());
  // An unknown constraint kind is a malformed frame, not a guess.
  r.params.constraint = {structured::ConstraintSpec::Kind::kRegex, "a+"};
  buf.clear();
  encode(r, buf);
  const size_t at = buf.find("a+") - 4 /* u32 length */ - 1 /* u8 kind */;
  ASSERT_EQ(static_cast<uint8_t>(buf[at]),
            static_cast<uint8_t>(structured::ConstraintSpec::Kind::kRegex));
  buf[at] = 42;
  EXPECT_FALSE(decode(bytes(buf)).has_value());
}

// Wire version 7: the constraint's start trigger (reasoning models) travels with it.
TEST(Wire, RequestCarriesTheConstraintsStartTrigger) {
  RequestFrame r;
  r.id = 3;
  r.prompt = {1, 2, 3, 4};
  r.params.constraint = {structured::ConstraintSpec::Kind::kJsonObject, "", {{151668}, {151667}}};
  r.params.constraint_replay = 3;
  r.params.prompt_logprobs = 1;  // a section after the trigger still parses
  std::string buf;
  encode(r, buf);
  auto got = std::get<RequestFrame>(round_trip(buf));
  EXPECT_EQ(got.params.constraint, r.params.constraint);
  EXPECT_EQ(got.params.constraint.start.end, std::vector<int32_t>{151668});
  EXPECT_EQ(got.params.constraint.start.open, std::vector<int32_t>{151667});
  EXPECT_EQ(got.params.prompt_logprobs, 1);
  // An end marker of two tokens and no opening marker.
  r.params.constraint.start = {{7, 8}, {}};
  buf.clear();
  encode(r, buf);
  EXPECT_EQ(std::get<RequestFrame>(round_trip(buf)).params.constraint.start,
            r.params.constraint.start);
  // A marker longer than kMaxTriggerIds is a malformed frame.
  r.params.constraint.start.end.assign(structured::kMaxTriggerIds + 1, 7);
  buf.clear();
  encode(r, buf);
  EXPECT_FALSE(decode(bytes(buf)).has_value());
}

TEST(Wire, AnOlderPeerIsRefusedWithTheVersionInTheError) {
  HelloFrame h;
  std::string buf;
  encode(h, buf);
  buf[kFrameHeaderBytes] = 6;  // what a peer before the constraint's start trigger sends
  auto f = decode(bytes(buf));
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.status().message().find("version 6, expected 7..8"), std::string::npos)
      << f.status().message();
}

// Wire version 8: the priority class travels as request flag 8 + i32, only when non-zero.
TEST(Wire, RequestCarriesItsPriority) {
  for (const int priority : {-5, 0, 3, std::numeric_limits<int32_t>::max()}) {
    RequestFrame r;
    r.id = 4;
    r.prompt = {1, 2};
    r.params.priority = priority;
    r.params.prompt_logprobs = priority == 3 ? 2 : -1;  // beside the section before it
    std::string buf;
    encode(r, buf);
    const auto got = std::get<RequestFrame>(round_trip(buf));
    EXPECT_EQ(got.params.priority, priority);
    EXPECT_EQ(got.params.prompt_logprobs, r.params.prompt_logprobs);
  }
  // A frame without a priority has version 7's layout: a v7 peer's frame reads with priority 0.
  RequestFrame plain;
  plain.id = 5;
  plain.prompt = {9};
  plain.params.prompt_logprobs = 1;
  std::string v7;
  encode(plain, v7);
  v7[kFrameHeaderBytes] = 7;
  auto old = decode(bytes(v7));
  ASSERT_TRUE(old.has_value()) << old.status().message();
  EXPECT_EQ(std::get<RequestFrame>(*old).params.priority, 0);
  EXPECT_EQ(std::get<RequestFrame>(*old).params.prompt_logprobs, 1);
  // Flag 8 in a v7 frame, or a priority section holding 0, is malformed.
  RequestFrame pr;
  pr.prompt = {9};
  pr.params.priority = 2;
  std::string buf;
  encode(pr, buf);
  std::string as_v7 = buf;
  as_v7[kFrameHeaderBytes] = 7;
  EXPECT_FALSE(decode(bytes(as_v7)).has_value());
  std::string zero = buf;
  std::memset(zero.data() + zero.size() - 4, 0, 4);
  EXPECT_FALSE(decode(bytes(zero)).has_value());
}

TEST(Wire, OutputRoundTripsTokensLogprobsAndErrors) {
  OutputFrame o;
  o.id = 42;
  o.output.tokens = {{5, -0.125f, {{5, -0.125f}, {9, -3.5f}}}, {6, -1e-7f, {}}};
  o.output.finish = engine::FinishReason::kError;
  o.output.error = Status(StatusCode::kUnavailable, "worker gone", "field");
  o.output.prompt_tokens = 11;
  o.output.completion_tokens = 2;
  o.output.cached_tokens = 8;
  std::string buf;
  encode(o, buf);
  const auto got = std::get<OutputFrame>(round_trip(buf));
  EXPECT_EQ(got.id, 42u);
  ASSERT_EQ(got.output.tokens.size(), 2u);
  EXPECT_EQ(got.output.tokens[0].token, 5);
  EXPECT_EQ(got.output.tokens[0].logprob, -0.125f);
  EXPECT_EQ(got.output.tokens[0].top_logprobs, o.output.tokens[0].top_logprobs);
  EXPECT_EQ(got.output.tokens[1].logprob, -1e-7f);
  EXPECT_EQ(got.output.finish, engine::FinishReason::kError);
  EXPECT_EQ(got.output.error.code(), StatusCode::kUnavailable);
  EXPECT_EQ(got.output.error.message(), "worker gone");
  EXPECT_EQ(got.output.error.field(), "field");
  EXPECT_EQ(got.output.prompt_tokens, 11);
  EXPECT_EQ(got.output.completion_tokens, 2);
  EXPECT_EQ(got.output.cached_tokens, 8);
}

TEST(Wire, PartialFramesWaitAndBadFramesFail) {
  std::string buf;
  encode(CancelFrame{7}, buf);
  encode(CancelFrame{8}, buf);
  const size_t one = buf.size() / 2;
  for (size_t n = 0; n < one; ++n) {
    auto s = frame_size(bytes(buf.substr(0, n)));
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(*s, 0u) << n;
  }
  EXPECT_EQ(*frame_size(bytes(buf)), one);
  EXPECT_EQ(std::get<CancelFrame>(*decode(bytes(buf.substr(0, one)))).id, 7u);

  // Over the size limit.
  std::string huge(4, '\0');
  const uint32_t len = kMaxFrameBytes + 1;
  std::memcpy(huge.data(), &len, 4);
  EXPECT_FALSE(frame_size(bytes(huge)).has_value());

  // Wrong version, unknown type, truncated body, trailing bytes.
  std::string bad = buf.substr(0, one);
  bad[4] = 99;
  EXPECT_FALSE(decode(bytes(bad)).has_value());
  bad = buf.substr(0, one);
  bad[5] = 77;
  EXPECT_FALSE(decode(bytes(bad)).has_value());
  RequestFrame r;
  r.prompt = {1, 2, 3};
  std::string req;
  encode(r, req);
  std::string cut = req.substr(0, req.size() - 3);
  const uint32_t cut_len = static_cast<uint32_t>(cut.size() - 4);
  std::memcpy(cut.data(), &cut_len, 4);
  EXPECT_FALSE(decode(bytes(cut)).has_value());
  std::string longer = req + "x";
  const uint32_t longer_len = static_cast<uint32_t>(longer.size() - 4);
  std::memcpy(longer.data(), &longer_len, 4);
  EXPECT_FALSE(decode(bytes(longer)).has_value());
  // A prompt count larger than the frame.
  std::string lying = req;
  const uint32_t big = 1u << 30;
  std::memcpy(lying.data() + 4 + 2 + 8, &big, 4);
  EXPECT_FALSE(decode(bytes(lying)).has_value());
}

TEST(Wire, KvEventsAndLoadRoundTripAsJson) {
  kv::KvEvent stored;
  stored.event_id = 3;
  stored.data = kv::BlockStored{0xffffffffffffffffull, {{1, 2}, {3, 4}}, {1, 2, 3, 4}, 2};
  kv::KvEvent removed;
  removed.event_id = 4;
  removed.data = kv::BlockRemoved{{1, 0x8000000000000000ull}};
  kv::KvEvent cleared;
  cleared.event_id = 5;
  cleared.data = kv::AllBlocksCleared{};
  kv::KvEvent root;
  root.data = kv::BlockStored{std::nullopt, {{7, 8}}, {5, 6}, 2};
  // KV tiers (issue 24): a lower tier's events carry storage_tier and version 2.
  kv::KvEvent host;
  host.version = kv::kKvTierEventsVersion;
  host.event_id = 6;
  host.data = kv::BlockStored{9, {{10, 11}}, {}, 2, kv::kStorageHost};
  kv::KvEvent disk_removed;
  disk_removed.version = kv::kKvTierEventsVersion;
  disk_removed.event_id = 7;
  disk_removed.data = kv::BlockRemoved{{10}, kv::kStorageDisk};
  EXPECT_EQ(kv_event_to_json(1, stored).find("storage_tier"), std::string::npos);
  for (const kv::KvEvent& e : {stored, removed, cleared, root, host, disk_removed}) {
    auto got = kv_event_from_json(kv_event_to_json(0xabcdef, e));
    ASSERT_TRUE(got.has_value()) << got.status().to_string();
    EXPECT_EQ(got->first, 0xabcdefu);
    EXPECT_EQ(got->second, e);
  }
  EXPECT_FALSE(kv_event_from_json("{\"worker_id\":1}").has_value());
  EXPECT_FALSE(kv_event_from_json("not json").has_value());
  EXPECT_FALSE(kv_event_from_json("{\"worker_id\":1,\"version\":2,\"event_id\":0,\"data\":"
                                  "{\"removed\":{\"block_hashes\":[1],\"storage_tier\":7}}}")
                   .has_value());
  WorkerLoad l{99, 3, 4, 5, 6};
  EXPECT_EQ(*load_from_json(load_to_json(l)), l);
}

TEST(Component, KeysAndSubjectsAreBuiltAndParsedInOnePlace) {
  EndpointId ep{"dynamo", "backend", "generate"};
  EXPECT_EQ(instance_key(ep, 0x1a2b), "v1/instances/dynamo/backend/generate/1a2b");
  EXPECT_EQ(model_card_key(ep, 0x1a2b), "v1/mdc/dynamo/backend/generate/1a2b");
  EXPECT_EQ(kv_events_subject("dynamo", "backend"), "dynamo.backend.kv_events");
  auto k = parse_instance_key("v1/instances/dynamo/backend/generate/1a2b");
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->endpoint, ep);
  EXPECT_EQ(k->instance_id, 0x1a2bu);
  EXPECT_TRUE(parse_model_card_key(model_card_key(ep, ~0ull)).has_value());
  EXPECT_FALSE(parse_instance_key("v1/mdc/dynamo/backend/generate/1a2b").has_value());
  EXPECT_FALSE(parse_instance_key("v1/instances/dynamo/backend/generate/xyz").has_value());
  EXPECT_FALSE(parse_instance_key("v1/instances/dynamo/backend/1a2b").has_value());
  EXPECT_FALSE((EndpointId{"a.b", "c", "d"}.validate().is_ok()));
  InstanceRecord r{ep, 0x1a2b, "127.0.0.1:5555"};
  EXPECT_EQ(*instance_record_from_json(to_json(r)), r);
}

TEST(ModelCard, RoundTripsAndRejectsNewerVersions) {
  ModelCard c;
  c.model_name = "llama";
  c.served_name = "stories260K";
  c.context_length = 512;
  c.block_size = 16;
  c.kv_total_blocks = 1024;
  c.max_num_seqs = 8;
  c.tokenizer_location = "/models/x.gguf";
  c.address = "10.0.0.1:4000";
  EXPECT_EQ(*model_card_from_json(to_json(c)), c);
  c.version = ModelCard::kVersion + 1;
  EXPECT_FALSE(model_card_from_json(to_json(c)).has_value());
  EXPECT_FALSE(model_card_from_json("{}").has_value());
}

}  // namespace
}  // namespace turbine::runtime

// Wire version 6: prompt logprobs travel both ways, alone and beside the disaggregation sections.
namespace turbine::runtime {
namespace {

TEST(Wire, PromptLogprobsRoundTrip) {
  for (const bool prefill_only : {false, true}) {
    RequestFrame r;
    r.id = 9;
    r.prompt = {1, 2, 3};
    r.params.max_tokens = 0;
    r.params.prompt_logprobs = 4;
    r.disagg.prefill_only = prefill_only;
    std::string buf;
    encode(r, buf);
    const Frame frame = round_trip(buf);
    const auto* got = std::get_if<RequestFrame>(&frame);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->params.prompt_logprobs, 4);
    EXPECT_EQ(got->params.max_tokens, 0);
    EXPECT_EQ(got->disagg.prefill_only, prefill_only);
  }
  RequestFrame plain;
  std::string buf;
  encode(plain, buf);
  const Frame pf = round_trip(buf);
  EXPECT_EQ(std::get<RequestFrame>(pf).params.prompt_logprobs, -1);

  for (const bool with_transfer : {false, true}) {
    OutputFrame o;
    o.id = 3;
    o.output.finish = engine::FinishReason::kLength;
    o.output.tokens = {{7, -0.5f, {{7, -0.5f}}}};
    o.output.prompt_logprobs = {{2, -1.25f, {{5, -0.125f}, {2, -1.25f}}}, {3, -3.5f, {}}};
    if (with_transfer) {
      auto meta = std::make_shared<engine::KvTransferMeta>();
      meta->transfer_id = 77;
      o.output.kv_transfer = meta;
    }
    buf.clear();
    encode(o, buf);
    const Frame frame = round_trip(buf);
    const auto* got = std::get_if<OutputFrame>(&frame);
    ASSERT_NE(got, nullptr);
    const auto& lp = got->output.prompt_logprobs;
    ASSERT_EQ(lp.size(), 2u);
    EXPECT_EQ(lp[0].token, 2);
    EXPECT_EQ(lp[0].logprob, -1.25f);
    ASSERT_EQ(lp[0].top_logprobs.size(), 2u);
    EXPECT_EQ(lp[0].top_logprobs[0], (std::pair<int32_t, float>{5, -0.125f}));
    EXPECT_EQ(lp[1].token, 3);
    EXPECT_TRUE(lp[1].top_logprobs.empty());
    EXPECT_EQ(got->output.tokens.size(), 1u);
    EXPECT_EQ(got->output.kv_transfer != nullptr, with_transfer);
    if (with_transfer) {
      EXPECT_EQ(got->output.kv_transfer->transfer_id, 77u);
    }
  }
  // An unknown output section is a protocol error.
  OutputFrame o;
  buf.clear();
  encode(o, buf);
  buf.push_back('\x03');
  const uint32_t len = static_cast<uint32_t>(buf.size() - kFrameHeaderBytes);
  std::memcpy(buf.data(), &len, sizeof len);
  EXPECT_FALSE(decode(bytes(buf)).has_value());
}

}  // namespace
}  // namespace turbine::runtime

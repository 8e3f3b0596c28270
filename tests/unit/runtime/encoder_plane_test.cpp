// Encoder models on the request plane (wire version 5 and later): the EncodeRequest/EncodeResponse
// bodies round-trip bit-exactly and refuse malformed bytes; a WorkerServer serving a real
// EncoderService (tests/fixtures/encoders) answers a RemoteEncoder with the local vectors, refuses
// generation, and a generative worker refuses encoder calls; a dead worker fails calls with
// kUnavailable so a RoutedEncoder retries them elsewhere; the EncoderWatcher serves encoder cards
// from discovery and leaves generative cards to the ModelWatcher.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "encoder/encoder_service.h"
#include "encoder/routed_encoder.h"
#include "runtime/discovery.h"
#include "runtime/encoder_watcher.h"
#include "runtime/encoder_wire.h"
#include "runtime/io_threads.h"
#include "runtime/model_card.h"
#include "runtime/remote_encoder.h"
#include "runtime/request_plane.h"
#include "runtime/wire.h"

namespace turbine::runtime {
namespace {

namespace fs = std::filesystem;
using encoder::EncoderOp;
using encoder::EncoderRequest;
using encoder::EncoderResponse;

const fs::path kFixtures = fs::path(TURBINE_SOURCE_DIR) / "tests" / "fixtures" / "encoders";

Result<EncoderResponse> call(encoder::AsyncEncoder& e, EncoderRequest r) {
  std::promise<Result<EncoderResponse>> p;
  auto f = p.get_future();
  e.submit(std::move(r), [&p](Result<EncoderResponse> x) { p.set_value(std::move(x)); });
  return f.get();
}

TEST(EncoderWireTest, RequestsRoundTrip) {
  EncoderRequest r;
  r.op = EncoderOp::kScore;
  r.texts = {"doc one", "", "ünïcode"};
  r.queries = {"q"};
  r.token_inputs = {{1, 2, 3}, {}};
  r.options.truncate = true;
  r.options.truncate_tokens = 17;
  r.options.normalize = false;
  r.options.dimensions = 64;
  r.input_field = "documents";
  r.query_field = "text_1";
  auto back = decode_encoder_request(encode_encoder_request(r));
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  EXPECT_EQ(back->op, r.op);
  EXPECT_EQ(back->texts, r.texts);
  EXPECT_EQ(back->queries, r.queries);
  EXPECT_EQ(back->token_inputs, r.token_inputs);
  EXPECT_TRUE(back->options.truncate);
  EXPECT_EQ(back->options.truncate_tokens, 17);
  ASSERT_TRUE(back->options.normalize.has_value());
  EXPECT_FALSE(*back->options.normalize);
  EXPECT_EQ(back->options.dimensions, 64);
  EXPECT_EQ(back->input_field, "documents");
  EXPECT_EQ(back->query_field, "text_1");
  EncoderRequest plain;
  auto p = decode_encoder_request(encode_encoder_request(plain));
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->options.normalize.has_value());
}

TEST(EncoderWireTest, ResponsesRoundTripBitExactly) {
  EncoderResponse e;
  e.embeddings.push_back({{0.1f, -2.5e-7f, 3.0f}, 5});
  e.embeddings.push_back({{}, 1});
  auto eb = decode_encoder_response(encode_encoder_response(e));
  ASSERT_TRUE(eb.has_value());
  ASSERT_EQ(eb->embeddings.size(), 2u);
  EXPECT_EQ(eb->embeddings[0].vector, e.embeddings[0].vector);
  EXPECT_EQ(eb->embeddings[0].n_tokens, 5);

  EncoderResponse c;
  encoder::Classification cl;
  cl.labels = {{0, "neg", 0.25f, -1.0f}, {1, "pos", 0.75f, 1.0f}};
  cl.top = 1;
  cl.n_tokens = 9;
  c.classifications = {cl};
  auto cb = decode_encoder_response(encode_encoder_response(c));
  ASSERT_TRUE(cb.has_value());
  EXPECT_EQ(cb->classifications[0].labels[1].label, "pos");
  EXPECT_EQ(cb->classifications[0].labels[0].logit, -1.0f);
  EXPECT_EQ(cb->classifications[0].top, 1);

  EncoderResponse t;
  encoder::TokenClassification tc;
  tc.entities.push_back({"PER", 0.5f, "john", 0, 4, 0, 4});
  encoder::TokenPrediction tp;
  tp.token_id = 7;
  tp.label_id = 1;
  tp.score = 0.5f;
  tp.bytes = {3, 9};
  tc.tokens = {tp};
  tc.n_tokens = 3;
  t.token_classifications = {tc};
  auto tb = decode_encoder_response(encode_encoder_response(t));
  ASSERT_TRUE(tb.has_value());
  EXPECT_EQ(tb->token_classifications[0].entities[0].word, "john");
  EXPECT_EQ(tb->token_classifications[0].tokens[0].bytes.end, 9u);

  EncoderResponse s;
  s.scores = {{0.9f, 2.2f, 11}};
  auto sb = decode_encoder_response(encode_encoder_response(s));
  ASSERT_TRUE(sb.has_value());
  EXPECT_EQ(sb->scores[0].logit, 2.2f);

  auto err = decode_encoder_response(
      encode_encoder_response(Status(StatusCode::kInvalidArgument, "input[3] is empty", "input")));
  ASSERT_FALSE(err.has_value());
  EXPECT_EQ(err.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(err.status().field(), "input");
}

TEST(EncoderWireTest, MalformedBodiesAreRefused) {
  EncoderRequest r;
  r.texts = {"abc", "def"};
  const std::string good = encode_encoder_request(r);
  for (size_t cut = 0; cut < good.size(); ++cut)
    EXPECT_FALSE(decode_encoder_request(good.substr(0, cut)).has_value()) << cut;
  EXPECT_FALSE(decode_encoder_request(good + "x").has_value());
  std::string bad_op = good;
  bad_op[0] = 9;
  EXPECT_FALSE(decode_encoder_request(bad_op).has_value());
  // A count far larger than the bytes sent is refused before anything is allocated.
  std::string huge = good.substr(0, 10 + 4 + 5 + 4 + 5);
  huge += std::string("\xff\xff\xff\x7f", 4);
  EXPECT_FALSE(decode_encoder_request(huge).has_value());

  EncoderResponse e;
  e.embeddings.push_back({{1.0f, 2.0f}, 2});
  const std::string resp = encode_encoder_response(e);
  for (size_t cut = 0; cut < resp.size(); ++cut) {
    auto d = decode_encoder_response(resp.substr(0, cut));
    ASSERT_FALSE(d.has_value()) << cut;
    EXPECT_EQ(d.status().code(), StatusCode::kInternal);
  }
}

TEST(EncoderWireTest, FramesCarryTheBodies) {
  std::string buf;
  encode(EncodeRequestFrame{42, "body"}, buf);
  encode(EncodeResponseFrame{43, std::string("\0x", 2)}, buf);
  std::vector<Frame> frames;
  ASSERT_TRUE(take_frames(buf, frames).is_ok());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(std::get<EncodeRequestFrame>(frames[0]).id, 42u);
  EXPECT_EQ(std::get<EncodeRequestFrame>(frames[0]).body, "body");
  EXPECT_EQ(std::get<EncodeResponseFrame>(frames[1]).body, std::string("\0x", 2));
  EXPECT_TRUE(buf.empty());
}

TEST(ModelCardTest, EncoderFieldsRoundTripAndGenerativeCardsHaveNone) {
  ModelCard c;
  c.model_name = "bert";
  c.served_name = "emb";
  c.context_length = 512;
  c.block_size = 1;
  c.tokenizer_location = "/m";
  c.address = "h:1";
  c.task = "classification";
  c.embedding_dim = 768;
  c.max_inputs = 2048;
  c.labels = {"neg", "pos"};
  auto back = model_card_from_json(to_json(c));
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  EXPECT_EQ(*back, c);
  EXPECT_TRUE(back->is_encoder());
  ModelCard g = c;
  g.task.clear();
  g.embedding_dim = 0;
  g.max_inputs = 0;
  g.labels.clear();
  EXPECT_EQ(to_json(g).find("task"), std::string::npos);
  auto gb = model_card_from_json(to_json(g));
  ASSERT_TRUE(gb.has_value());
  EXPECT_FALSE(gb->is_encoder());
}

// A worker serving the bert fixture over loopback and a frontend's connection to it.
class EncoderPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    encoder::EncoderServiceOptions o;
    o.backend.n_threads = 1;
    auto s = encoder::EncoderService::load(kFixtures / "bert", o);
    ASSERT_TRUE(s.has_value()) << s.status().to_string();
    service_ = std::move(s).value();
    WorkerServerOptions wo;
    wo.host = "127.0.0.1";
    wo.token = "secret";
    server_ = std::make_unique<WorkerServer>(wo, nullptr);
    server_->set_encoder(service_);
    ASSERT_TRUE(server_->start().is_ok());
    card_.served_name = "emb";
    card_.model_name = "bert";
    card_.context_length = service_->max_tokens();
    card_.block_size = 1;
    card_.address = "127.0.0.1:" + std::to_string(server_->port());
    card_.task = "embedding";
    card_.embedding_dim = 32;
    card_.max_inputs = 8;
    RemoteEngineOptions base;
    base.token = "secret";
    connector_ = std::make_unique<TcpEncoderConnector>(2, 1, base);
  }
  void TearDown() override {
    if (server_) server_->stop();
  }

  std::shared_ptr<encoder::EncoderService> service_;
  std::unique_ptr<WorkerServer> server_;
  ModelCard card_;
  std::unique_ptr<TcpEncoderConnector> connector_;
};

TEST_F(EncoderPlaneTest, RemoteCallsGiveTheLocalVectors) {
  auto remote = connector_->connect({}, card_);
  ASSERT_TRUE(remote.has_value()) << remote.status().to_string();
  EXPECT_EQ((*remote)->info().task, encoder::EncoderTask::kEmbedding);
  EXPECT_EQ((*remote)->info().max_inputs, 8u);
  EncoderRequest r;
  r.op = EncoderOp::kEmbed;
  r.texts = {"Hello world!", "The quick brown fox."};
  r.options.dimensions = 16;
  auto got = call(**remote, r);
  ASSERT_TRUE(got.has_value()) << got.status().to_string();
  auto want = service_->run(r);
  ASSERT_TRUE(want.has_value());
  ASSERT_EQ(got->embeddings.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(got->embeddings[i].vector, want->embeddings[i].vector);
  EXPECT_EQ(got->embeddings[0].vector.size(), 16u);

  // The worker's errors come back with their code and field.
  EncoderRequest empty;
  empty.texts = {"a", ""};
  auto bad = call(**remote, empty);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().field(), "input");
  EXPECT_NE(bad.status().message().find("input[1] is empty"), std::string::npos);
  // More inputs than the card allows: refused before the network.
  EncoderRequest many;
  many.texts.assign(9, "x");
  auto refused = call(**remote, many);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.status().message().find("too many inputs"), std::string::npos);

  // Generation on an encoder worker is an error, not a hang.
  RemoteEngineOptions o;
  o.address = card_.address;
  o.token = "secret";
  IoThreads io(1);
  RemoteEngine gen(o, io.executor());
  std::promise<engine::EngineOutput> out;
  engine::EngineRequest er;
  er.id = 1;
  er.prompt = {1, 2};
  er.params.max_tokens = 2;
  er.on_output = [&](engine::EngineOutput&& x) {
    if (x.finish != engine::FinishReason::kNone) out.set_value(std::move(x));
  };
  ASSERT_TRUE(gen.submit(std::move(er)).is_ok());
  const engine::EngineOutput o1 = out.get_future().get();
  EXPECT_EQ(o1.finish, engine::FinishReason::kError);
  EXPECT_NE(o1.error.message().find("encoder model"), std::string::npos);
  gen.shutdown();
}

TEST_F(EncoderPlaneTest, AWorkerWithoutAnEncoderRefusesEncoderCalls) {
  WorkerServerOptions wo;
  wo.host = "127.0.0.1";
  WorkerServer plain(wo, nullptr);
  ASSERT_TRUE(plain.start().is_ok());
  ModelCard c = card_;
  c.address = "127.0.0.1:" + std::to_string(plain.port());
  TcpEncoderConnector connector(1, 1);
  auto remote = connector.connect({}, c);
  ASSERT_TRUE(remote.has_value());
  EncoderRequest r;
  r.texts = {"x"};
  auto got = call(**remote, r);
  ASSERT_FALSE(got.has_value());
  EXPECT_NE(got.status().message().find("generative model"), std::string::npos);
  plain.stop();
}

TEST_F(EncoderPlaneTest, ALostWorkerIsRetriedOnAnother) {
  auto good = connector_->connect({}, card_);
  ASSERT_TRUE(good.has_value());
  ModelCard dead = card_;
  dead.address = "127.0.0.1:1";  // nothing listens: connecting fails with kUnavailable
  auto lost = connector_->connect({}, dead);
  ASSERT_TRUE(lost.has_value());
  auto routed = std::make_shared<encoder::RoutedEncoder>("emb", 3);
  routed->add_worker(1, *lost, (*lost)->info());
  routed->add_worker(2, *good, (*good)->info());
  for (int i = 0; i < 4; ++i) {  // whichever goes first, every call succeeds
    EncoderRequest r;
    r.texts = {"Hello world!"};
    auto got = call(*routed, r);
    ASSERT_TRUE(got.has_value()) << got.status().to_string();
  }
  routed->remove_worker(2);
  EncoderRequest r;
  r.texts = {"x"};
  auto none = call(*routed, r);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable);
}

TEST_F(EncoderPlaneTest, TheWatcherServesEncoderCardsOnly) {
  auto store = MemoryDiscovery::make_store();
  MemoryDiscovery frontend_side(store);
  std::mutex mu;
  std::map<std::string, std::shared_ptr<encoder::AsyncEncoder>> served;
  std::vector<std::string> removed;
  EncoderModelEvents events{[&](const ModelCard& card, std::shared_ptr<encoder::AsyncEncoder> enc) {
                              std::lock_guard lock(mu);
                              served[card.served_name] = std::move(enc);
                              return Status::ok();
                            },
                            [&](const std::string& name) {
                              std::lock_guard lock(mu);
                              removed.push_back(name);
                            }};
  EncoderWatcher watcher(
      "ns", frontend_side,
      [this](const ParsedKey& k, const ModelCard& c) { return connector_->connect(k, c); }, events);
  ASSERT_TRUE(watcher.start().is_ok());
  auto worker = std::make_unique<MemoryDiscovery>(store);
  EndpointId ep{"ns", kWorkerComponent, kGenerateEndpoint};
  ASSERT_TRUE(
      worker->register_key(model_card_key(ep, worker->instance_id()), to_json(card_)).is_ok());
  // A generative card in the same namespace is not the encoder watcher's.
  auto gen_worker = std::make_unique<MemoryDiscovery>(store);
  ModelCard gen = card_;
  gen.served_name = "llm";
  gen.task.clear();
  ASSERT_TRUE(gen_worker->register_key(model_card_key(ep, gen_worker->instance_id()), to_json(gen))
                  .is_ok());
  std::shared_ptr<encoder::AsyncEncoder> enc;
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(served.size(), 1u);
    ASSERT_TRUE(served.count("emb"));
    enc = served["emb"];
  }
  EXPECT_EQ(watcher.model_names(), std::vector<std::string>{"emb"});
  EncoderRequest r;
  r.texts = {"Hello world!"};
  auto got = call(*enc, r);
  ASSERT_TRUE(got.has_value()) << got.status().to_string();
  worker->shutdown();  // the lease ends: the card goes
  for (int i = 0; i < 500 && watcher.model_names().size() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(removed, std::vector<std::string>{"emb"});
  }
  EXPECT_TRUE(watcher.model_names().empty());
  watcher.stop();
  gen_worker->shutdown();
}

}  // namespace
}  // namespace turbine::runtime

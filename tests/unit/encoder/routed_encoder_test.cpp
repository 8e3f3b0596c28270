// RoutedEncoder (least-loaded, retries on kUnavailable, workers that leave) and the
// EncoderService's request-level features the endpoints rely on: Matryoshka dimensions with
// renormalisation, several texts per token classification, pairwise scores, errors naming the
// endpoint's fields, and submit() from many threads at once.
#include "encoder/routed_encoder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "encoder/encoder_service.h"

namespace turbine::encoder {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = fs::path(TURBINE_SOURCE_DIR) / "tests" / "fixtures" / "encoders";

Result<EncoderResponse> call(AsyncEncoder& e, EncoderRequest r) {
  std::promise<Result<EncoderResponse>> p;
  auto f = p.get_future();
  e.submit(std::move(r), [&p](Result<EncoderResponse> x) { p.set_value(std::move(x)); });
  return f.get();
}

// Holds its calls until release(); answers with its id as the embedding, or fails.
class FakeWorker final : public AsyncEncoder {
 public:
  explicit FakeWorker(int id) : id_(id) {}
  void submit(EncoderRequest, EncoderCallback done) override {
    Status st;
    {
      std::lock_guard lock(mu_);
      calls_++;
      st = fail_;
      if (st.is_ok() && hold_) {
        held_.push_back(std::move(done));
        return;
      }
    }
    // Outside the lock: a router retries from inside the callback.
    if (!st.is_ok()) return done(st);
    done(answer());
  }
  EncoderInfo info() const override { return {}; }
  int in_flight() const override {
    std::lock_guard lock(mu_);
    return static_cast<int>(held_.size());
  }
  void shutdown() override {}
  void release() {
    std::vector<EncoderCallback> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
      hold_ = false;
    }
    for (auto& d : held) d(answer());
  }
  int calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  bool hold_ = false;  // set before the first call
  Status fail_;        // set between calls

 private:
  EncoderResponse answer() const {
    EncoderResponse r;
    r.embeddings.push_back({{static_cast<float>(id_)}, 1});
    return r;
  }
  const int id_;
  mutable std::mutex mu_;
  int calls_ = 0;
  std::vector<EncoderCallback> held_;
};

EncoderRequest one() {
  EncoderRequest r;
  r.texts = {"x"};
  return r;
}

TEST(RoutedEncoderTest, SendsEachCallToTheLeastLoadedWorker) {
  auto a = std::make_shared<FakeWorker>(1), b = std::make_shared<FakeWorker>(2);
  a->hold_ = true;
  auto routed = std::make_shared<RoutedEncoder>("m");
  routed->add_worker(1, a, {});
  routed->add_worker(2, b, {});
  // a holds what it gets, so after its first call every later one goes to b.
  std::vector<std::future<Result<EncoderResponse>>> pending;
  for (int i = 0; i < 6; ++i) {
    auto p = std::make_shared<std::promise<Result<EncoderResponse>>>();
    pending.push_back(p->get_future());
    routed->submit(one(), [p](Result<EncoderResponse> r) { p->set_value(std::move(r)); });
  }
  EXPECT_EQ(a->calls(), 1);
  EXPECT_EQ(b->calls(), 5);
  EXPECT_EQ(routed->in_flight(), 1);
  a->release();
  int from_a = 0;
  for (auto& f : pending) {
    auto r = f.get();
    ASSERT_TRUE(r.has_value());
    from_a += r->embeddings[0].vector[0] == 1.0f;
  }
  EXPECT_EQ(from_a, 1);
}

TEST(RoutedEncoderTest, RetriesUnavailableWorkersButNotBadInput) {
  auto gone = std::make_shared<FakeWorker>(1), ok = std::make_shared<FakeWorker>(2);
  gone->fail_ = Status(StatusCode::kUnavailable, "lost the connection");
  auto routed = std::make_shared<RoutedEncoder>("m", 3);
  routed->add_worker(1, gone, {});
  routed->add_worker(2, ok, {});
  for (int i = 0; i < 4; ++i) {
    auto r = call(*routed, one());
    ASSERT_TRUE(r.has_value()) << r.status().to_string();
    EXPECT_EQ(r->embeddings[0].vector[0], 2.0f);
  }
  ok->fail_ = invalid_argument("input[0] is empty", "input");
  auto bad = call(*routed, one());
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  // Every worker gone: the last error says so.
  ok->fail_ = Status(StatusCode::kUnavailable, "down");
  auto down = call(*routed, one());
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  // No retries: the worker's own error.
  auto strict = std::make_shared<RoutedEncoder>("m", 0);
  strict->add_worker(1, gone, {});
  strict->add_worker(2, std::make_shared<FakeWorker>(3), {});
  int failures = 0;
  for (int i = 0; i < 4; ++i) failures += !call(*strict, one()).has_value();
  EXPECT_GT(failures, 0);
}

TEST(RoutedEncoderTest, ARemovedWorkerFinishesWhatItRunsAndGetsNothingNew) {
  auto a = std::make_shared<FakeWorker>(1);
  a->hold_ = true;
  auto routed = std::make_shared<RoutedEncoder>("m");
  routed->add_worker(1, a, {});
  auto p = std::make_shared<std::promise<Result<EncoderResponse>>>();
  routed->submit(one(), [p](Result<EncoderResponse> r) { p->set_value(std::move(r)); });
  routed->remove_worker(1);
  FakeWorker* removed = a.get();
  a.reset();  // the call holds the worker
  EXPECT_EQ(routed->n_workers(), 0u);
  auto none = call(*routed, one());
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(none.status().message().find("no worker"), std::string::npos);
  // The removed worker still finishes the call it was running (which also frees it).
  removed->release();
  EXPECT_TRUE(p->get_future().get().has_value());
}

std::unique_ptr<EncoderService> service(const std::string& name) {
  EncoderServiceOptions o;
  o.backend.n_threads = 2;
  auto s = EncoderService::load(kFixtures / name, o);
  EXPECT_TRUE(s.has_value()) << s.status().to_string();
  return s.has_value() ? std::move(s).value() : nullptr;
}

float norm(const std::vector<float>& v) {
  double ss = 0.0;
  for (float x : v) ss += static_cast<double>(x) * x;
  return static_cast<float>(std::sqrt(ss));
}

TEST(EncoderServiceRequestTest, DimensionsTruncateAndRenormalise) {
  auto s = service("bert");  // normalised embeddings of width 32
  ASSERT_NE(s, nullptr);
  EncodeOptions full;
  full.normalize = false;
  auto raw = s->embed({"Hello world!"}, full);
  ASSERT_TRUE(raw.has_value());
  EncodeOptions eight;
  eight.dimensions = 8;
  auto cut = s->embed({"Hello world!"}, eight);
  ASSERT_TRUE(cut.has_value()) << cut.status().to_string();
  ASSERT_EQ((*cut)[0].vector.size(), 8u);
  EXPECT_NEAR(norm((*cut)[0].vector), 1.0f, 1e-5);
  std::vector<float> head((*raw)[0].vector.begin(), (*raw)[0].vector.begin() + 8);
  const float n = norm(head);
  for (size_t i = 0; i < 8; ++i) EXPECT_NEAR((*cut)[0].vector[i], head[i] / n, 1e-5);
  EncodeOptions too_many;
  too_many.dimensions = 33;
  auto bad = s->embed({"x"}, too_many);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().field(), "dimensions");
}

TEST(EncoderServiceRequestTest, SeveralTextsPerTokenClassification) {
  auto s = service("bert_ner");
  ASSERT_NE(s, nullptr);
  EncoderRequest r;
  r.op = EncoderOp::kClassifyTokens;
  r.texts = {"John Smith lives in Paris.", "Mary works at Acme."};
  auto both = s->run(r);
  ASSERT_TRUE(both.has_value()) << both.status().to_string();
  ASSERT_EQ(both->token_classifications.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    auto alone = s->classify_tokens(r.texts[i]);
    ASSERT_TRUE(alone.has_value());
    ASSERT_EQ(alone->tokens.size(), both->token_classifications[i].tokens.size());
    for (size_t t = 0; t < alone->tokens.size(); ++t)
      EXPECT_EQ(alone->tokens[t].label_id, both->token_classifications[i].tokens[t].label_id);
  }
}

TEST(EncoderServiceRequestTest, PairwiseScoresAndFieldNames) {
  auto s = service("xlmr_rerank");
  ASSERT_NE(s, nullptr);
  EncoderRequest r;
  r.op = EncoderOp::kScore;
  r.queries = {"what is the capital of france?", "hello"};
  r.texts = {"Paris is the capital of France.", "world"};
  auto pairs = s->run(r);
  ASSERT_TRUE(pairs.has_value()) << pairs.status().to_string();
  ASSERT_EQ(pairs->scores.size(), 2u);
  auto first = s->score(r.queries[0], {r.texts[0]});
  auto second = s->score(r.queries[1], {r.texts[1]});
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_NEAR(pairs->scores[0].score, (*first)[0].score, 1e-6);
  EXPECT_NEAR(pairs->scores[1].score, (*second)[0].score, 1e-6);

  EncoderRequest bad = r;
  bad.texts = {"a", "", "c"};
  bad.queries = {"q"};
  bad.input_field = "documents";
  auto err = s->run(bad);
  ASSERT_FALSE(err.has_value());
  EXPECT_EQ(err.status().field(), "documents");
  EXPECT_NE(err.status().message().find("documents[1] is empty"), std::string::npos);
  bad.texts = {"a", "b", "c"};
  bad.queries = {"q", "r"};
  bad.query_field = "text_1";
  auto mismatch = s->run(bad);
  ASSERT_FALSE(mismatch.has_value());
  EXPECT_EQ(mismatch.status().field(), "text_1");
}

TEST(EncoderServiceRequestTest, ManyThreadsSubmitAtOnce) {
  auto s = service("modernbert");
  ASSERT_NE(s, nullptr);
  auto want = s->embed({"river bank", "the quick brown fox"});
  ASSERT_TRUE(want.has_value());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        auto got = s->embed({"river bank", "the quick brown fox"});
        if (!got.has_value()) continue;
        bool same = true;
        for (size_t j = 0; j < (*want)[1].vector.size(); ++j)
          same = same && std::fabs((*got)[1].vector[j] - (*want)[1].vector[j]) < 1e-5f;
        ok += same;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 20);
  EXPECT_EQ(s->in_flight(), 0);
  const EncoderInfo info = s->info();
  EXPECT_EQ(info.task, EncoderTask::kEmbedding);
  EXPECT_EQ(info.hidden_dim, 32);
  s->shutdown();
  auto after = s->embed({"x"});
  ASSERT_FALSE(after.has_value());
  EXPECT_EQ(after.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace turbine::encoder

// EncoderService: bad input (empty, too many, too long, truncation on request, ids out of range,
// the wrong task for the model), normalisation, bi-encoder scores; EncoderEngine: batching under
// the token budget, batch invariance, queue limits and shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <future>
#include <thread>

#include "encoder/encoder_engine.h"
#include "encoder/encoder_service.h"

namespace turbine::encoder {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(TURBINE_SOURCE_DIR) / "tests" / "fixtures" / "encoders";

std::unique_ptr<EncoderService> service(const std::string& name, size_t max_inputs = 2048) {
  EncoderServiceOptions o;
  o.backend.n_threads = 2;
  o.max_inputs = max_inputs;
  auto s = EncoderService::load(kFixtures / name, o);
  EXPECT_TRUE(s.has_value()) << s.status().to_string();
  return s.has_value() ? std::move(s).value() : nullptr;
}

float norm(const std::vector<float>& v) {
  double ss = 0.0;
  for (float x : v) ss += static_cast<double>(x) * x;
  return static_cast<float>(std::sqrt(ss));
}

std::string words(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += i % 2 ? "river " : "bank ";
  return s;
}

TEST(EncoderServiceTest, RejectsEmptyAndTooManyInputs) {
  auto s = service("bert", 4);
  ASSERT_NE(s, nullptr);
  auto none = s->embed({});
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  auto empty = s->embed({"hello", ""});
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("input[1] is empty"), std::string::npos);
  auto many = s->embed({"a", "b", "c", "d", "e"});
  ASSERT_FALSE(many.has_value());
  EXPECT_NE(many.status().message().find("too many inputs"), std::string::npos);
  auto no_tokens = s->embed_tokens({{}});
  ASSERT_FALSE(no_tokens.has_value());
  EXPECT_EQ(no_tokens.status().code(), StatusCode::kInvalidArgument);
}

TEST(EncoderServiceTest, TooLongInputIsAnErrorUnlessTruncationIsAsked) {
  auto s = service("bert");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->max_tokens(), 64);  // max_position_embeddings
  const std::string long_text = words(100);
  auto refused = s->embed({long_text});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("maximum of 64"), std::string::npos)
      << refused.status().message();

  EncodeOptions truncate;
  truncate.truncate = true;
  auto cut = s->embed({long_text}, truncate);
  ASSERT_TRUE(cut.has_value()) << cut.status().to_string();
  EXPECT_EQ((*cut)[0].n_tokens, 64);
  EXPECT_NEAR(norm((*cut)[0].vector), 1.0f, 1e-5);

  EncodeOptions ten;
  ten.truncate_tokens = 10;
  auto short_cut = s->embed({long_text}, ten);
  ASSERT_TRUE(short_cut.has_value());
  EXPECT_EQ((*short_cut)[0].n_tokens, 10);
  // The same as embedding the first 8 words ([CLS] + 8 + [SEP]).
  auto same = s->embed({words(8)});
  ASSERT_TRUE(same.has_value());
  for (size_t j = 0; j < same->at(0).vector.size(); ++j)
    EXPECT_NEAR((*short_cut)[0].vector[j], (*same)[0].vector[j], 1e-5);
}

TEST(EncoderServiceTest, TokenIdInputsAreCheckedAndTruncatedOnRequest) {
  auto s = service("bert");
  ASSERT_NE(s, nullptr);
  auto bad = s->embed_tokens({{2, 5, 100000, 3}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("out of range"), std::string::npos);
  std::vector<int32_t> long_ids(80, 145);
  EXPECT_FALSE(s->embed_tokens({long_ids}).has_value());
  EncodeOptions truncate;
  truncate.truncate = true;
  auto cut = s->embed_tokens({long_ids}, truncate);
  ASSERT_TRUE(cut.has_value()) << cut.status().to_string();
  EXPECT_EQ((*cut)[0].n_tokens, 64);
  // Token ids give the same vector as the text they came from.
  const auto ids = s->model().tokenizer().encode("Hello world!", true);
  auto from_ids = s->embed_tokens({ids});
  auto from_text = s->embed({"Hello world!"});
  ASSERT_TRUE(from_ids.has_value() && from_text.has_value());
  for (size_t j = 0; j < from_ids->at(0).vector.size(); ++j)
    EXPECT_FLOAT_EQ((*from_ids)[0].vector[j], (*from_text)[0].vector[j]);
}

TEST(EncoderServiceTest, WrongTaskForTheModelIsAnError) {
  auto cls = service("bert_cls");
  ASSERT_NE(cls, nullptr);
  EXPECT_EQ(cls->task(), EncoderTask::kClassification);
  auto e = cls->embed({"hello"});
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("is a classification model"), std::string::npos);
  EXPECT_FALSE(cls->classify_tokens("hello").has_value());
  EXPECT_FALSE(cls->score("q", {"d"}).has_value());

  auto emb = service("bert");
  ASSERT_NE(emb, nullptr);
  EXPECT_FALSE(emb->classify({"hello"}).has_value());
  EXPECT_FALSE(emb->classify_tokens("hello").has_value());

  auto ner = service("bert_ner");
  ASSERT_NE(ner, nullptr);
  EXPECT_FALSE(ner->classify({"hello"}).has_value());
  EXPECT_FALSE(ner->embed({"hello"}).has_value());
}

TEST(EncoderServiceTest, ClassifyGivesLabelsFromId2LabelWithSoftmax) {
  auto s = service("bert_cls");
  ASSERT_NE(s, nullptr);
  auto r = s->classify({"Hello world!", "The quick brown fox."});
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  ASSERT_EQ(r->size(), 2u);
  for (const Classification& c : *r) {
    ASSERT_EQ(c.labels.size(), 3u);
    EXPECT_EQ(c.labels[0].label, "negative");
    EXPECT_EQ(c.labels[2].label, "positive");
    float sum = 0.0f;
    for (const LabelScore& l : c.labels) {
      sum += l.probability;
      EXPECT_LE(l.probability, c.labels[static_cast<size_t>(c.top)].probability);
    }
    EXPECT_NEAR(sum, 1.0f, 1e-5);
  }
}

TEST(EncoderServiceTest, NormalizationFollowsTheModelUnlessOverridden) {
  auto s = service("modernbert");  // sentence-transformers: CLS pooling, no Normalize module
  ASSERT_NE(s, nullptr);
  auto plain = s->embed({"Hello world!"});
  ASSERT_TRUE(plain.has_value());
  EXPECT_GT(std::fabs(norm((*plain)[0].vector) - 1.0f), 1e-3);
  EncodeOptions o;
  o.normalize = true;
  auto unit = s->embed({"Hello world!"}, o);
  ASSERT_TRUE(unit.has_value());
  EXPECT_NEAR(norm((*unit)[0].vector), 1.0f, 1e-5);
}

TEST(EncoderServiceTest, EmbeddingModelsScoreByCosineSimilarity) {
  auto s = service("bert");
  ASSERT_NE(s, nullptr);
  auto r = s->score("the river bank", {"the river bank", "acme company question"});
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_NEAR((*r)[0].score, 1.0f, 1e-5);
  EXPECT_LT((*r)[1].score, (*r)[0].score);
  EXPECT_FALSE(s->score("", {"x"}).has_value());
}

TEST(EncoderServiceTest, ConcurrentCallersGetTheSameVectorsAsOneAtATime) {
  auto s = service("modernbert");
  ASSERT_NE(s, nullptr);
  std::vector<std::string> texts;
  for (int i = 0; i < 24; ++i) texts.push_back(words(3 + i % 17) + std::to_string(i));
  std::vector<std::vector<float>> alone;
  for (const std::string& t : texts) {
    auto r = s->embed({t});
    ASSERT_TRUE(r.has_value());
    alone.push_back((*r)[0].vector);
  }
  std::vector<std::future<Result<std::vector<Embedding>>>> futures;
  for (int k = 0; k < 4; ++k) {
    futures.push_back(std::async(std::launch::async, [&] { return s->embed(texts); }));
  }
  for (auto& f : futures) {
    auto r = f.get();
    ASSERT_TRUE(r.has_value());
    for (size_t i = 0; i < texts.size(); ++i) {
      for (size_t j = 0; j < alone[i].size(); ++j)
        ASSERT_NEAR((*r)[i].vector[j], alone[i][j], 1e-5) << i;
    }
  }
  EXPECT_LT(s->stats().batches, s->stats().sequences);  // some jobs shared a batch
}

// A backend that records batches and can be held inside forward().
class FakeBackend final : public EncoderBackend {
 public:
  std::string_view name() const override { return "fake"; }
  int hidden_dim() const override { return 2; }
  int max_tokens() const override { return 16; }
  Status forward(const EncoderBatch& batch, std::vector<float>& out) override {
    if (hold_) gate_.wait();
    batch_tokens.push_back(static_cast<int>(batch.ids.size()));
    out.assign(batch.output_rows() * 2, 0.0f);
    size_t row = 0;
    for (size_t s = 0; s < batch.n_seqs(); ++s) {
      out[row * 2] = static_cast<float>(batch.ids[static_cast<size_t>(batch.seq_begin[s])]);
      out[row * 2 + 1] = static_cast<float>(batch.seq_begin[s + 1] - batch.seq_begin[s]);
      ++row;
    }
    return Status::ok();
  }
  void hold(std::shared_future<void> gate) {
    gate_ = std::move(gate);
    hold_ = true;
  }
  std::vector<int> batch_tokens;

 private:
  bool hold_ = false;
  std::shared_future<void> gate_;
};

EncodeJob fake_job(int first, int n) {
  EncodeJob j;
  j.ids.assign(static_cast<size_t>(n), first);
  j.output = Output::kCls;
  return j;
}

TEST(EncoderEngineTest, PacksJobsUnderTheTokenBudgetAndAnswersEachOne) {
  std::promise<void> open;
  auto backend = std::make_unique<FakeBackend>();
  FakeBackend* fake = backend.get();
  fake->hold(open.get_future().share());
  EncoderEngineOptions o;
  o.max_batch_tokens = 10;
  EncoderEngine engine(std::move(backend), o);
  std::vector<std::future<EncodeResult>> results;
  std::vector<std::promise<EncodeResult>> promises(7);
  for (int i = 0; i < 7; ++i) {
    results.push_back(promises[static_cast<size_t>(i)].get_future());
    engine.submit(fake_job(i, 4), [&promises, i](EncodeResult r) {
      promises[static_cast<size_t>(i)].set_value(std::move(r));
    });
  }
  open.set_value();
  for (int i = 0; i < 7; ++i) {
    EncodeResult r = results[static_cast<size_t>(i)].get();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)[0], static_cast<float>(i));
    EXPECT_EQ((*r)[1], 4.0f);
  }
  int total = 0;
  for (int t : fake->batch_tokens) {
    EXPECT_LE(t, 10);
    total += t;
  }
  EXPECT_EQ(total, 28);
  EXPECT_LT(fake->batch_tokens.size(), 7u);  // jobs queued behind the held one were packed
  // Too long for the backend, and empty: refused alone.
  auto refused = engine.run({fake_job(1, 17), fake_job(2, 3), EncodeJob{}});
  EXPECT_FALSE(refused[0].has_value());
  EXPECT_TRUE(refused[1].has_value());
  EXPECT_FALSE(refused[2].has_value());
}

TEST(EncoderEngineTest, FullQueueAndShutdownRefuseJobs) {
  std::promise<void> open;
  auto backend = std::make_unique<FakeBackend>();
  backend->hold(open.get_future().share());
  EncoderEngineOptions o;
  o.max_queue = 1;
  EncoderEngine engine(std::move(backend), o);
  std::promise<EncodeResult> first;
  engine.submit(fake_job(1, 2), [&](EncodeResult r) { first.set_value(std::move(r)); });
  // Wait until the engine thread took the first job (the queue is empty again).
  while (engine.stats().queued != 0) std::this_thread::yield();
  std::promise<EncodeResult> second;
  engine.submit(fake_job(2, 2), [&](EncodeResult r) { second.set_value(std::move(r)); });
  std::promise<EncodeResult> third;
  engine.submit(fake_job(3, 2), [&](EncodeResult r) { third.set_value(std::move(r)); });
  EncodeResult refused = third.get_future().get();
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  open.set_value();
  EXPECT_TRUE(first.get_future().get().has_value());
  EXPECT_TRUE(second.get_future().get().has_value());
  engine.shutdown();
  auto after = engine.run({fake_job(4, 2)});
  ASSERT_FALSE(after[0].has_value());
  EXPECT_EQ(after[0].status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace turbine::encoder

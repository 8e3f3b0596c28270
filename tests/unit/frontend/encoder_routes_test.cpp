// The encoder routes over real HTTP (port 0) with a fake AsyncEncoder: what each endpoint sends
// the encoder, the bodies it answers, errors in the OpenAI shape (the encoder's 400s and 503s,
// the wrong endpoint for the model in both directions), and an empty model name.
#include "frontend/encoder_routes.h"

#include <filesystem>
#include <mutex>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "fakes.h"
#include "frontend/frontend.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace turbine::frontend {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Response = bhttp::response<bhttp::string_body>;
using encoder::EncoderOp;
using encoder::EncoderTask;

Response post(uint16_t port, std::string target, std::string body) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, target, 11};
  req.set(bhttp::field::host, "localhost");
  req.set(bhttp::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  bhttp::write(socket, req);
  boost::beast::flat_buffer buffer;
  Response res;
  bhttp::read(socket, buffer, res);
  return res;
}

// Answers from the request alone: embeddings [i, n_tokens-ish, 2, 0] per input, labels, scores
// 1 / (1 + i); records what it was asked; fails with `fail` when set.
class FakeEncoder final : public encoder::AsyncEncoder {
 public:
  explicit FakeEncoder(EncoderTask task) : task_(task) {}
  void submit(encoder::EncoderRequest r, encoder::EncoderCallback done) override {
    {
      std::lock_guard lock(mu_);
      requests_.push_back(r);
    }
    if (!fail_.is_ok()) return done(fail_);
    encoder::EncoderResponse out;
    const size_t n = r.n_inputs();
    for (size_t i = 0; i < n; ++i) {
      switch (r.op) {
        case EncoderOp::kEmbed: {
          encoder::Embedding e;
          e.vector = {static_cast<float>(i), 0.5f, 2.0f, -1.0f};
          if (r.options.dimensions > 0) e.vector.resize(static_cast<size_t>(r.options.dimensions));
          e.n_tokens = 3;
          out.embeddings.push_back(e);
          break;
        }
        case EncoderOp::kClassify: {
          encoder::Classification c;
          c.labels = {{0, "neg", 0.25f, -1.0f}, {1, "pos", 0.75f, 1.0f}};
          c.top = 1;
          c.n_tokens = 2;
          out.classifications.push_back(c);
          break;
        }
        case EncoderOp::kClassifyTokens: {
          encoder::TokenClassification t;
          t.entities.push_back({"PER", 0.875f, "john", 0, 4, 0, 4});
          t.n_tokens = 4;
          out.token_classifications.push_back(t);
          break;
        }
        case EncoderOp::kScore:
          out.scores.push_back({1.0f / (1.0f + static_cast<float>(i)), 0.0f, 5});
          break;
      }
    }
    done(std::move(out));
  }
  encoder::EncoderInfo info() const override {
    encoder::EncoderInfo i;
    i.task = task_;
    i.hidden_dim = 4;
    i.max_tokens = 128;
    i.max_inputs = 16;
    return i;
  }
  int in_flight() const override { return 0; }
  void shutdown() override {}

  encoder::EncoderRequest last() {
    std::lock_guard lock(mu_);
    return requests_.back();
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return requests_.size();
  }
  Status fail_;

 private:
  EncoderTask task_;
  std::mutex mu_;
  std::vector<encoder::EncoderRequest> requests_;
};

class EncoderRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FrontendOptions opts;
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.preprocess_threads = 1;
    auto front = Frontend::create(opts);
    ASSERT_TRUE(front.has_value());
    front_ = std::move(*front);
    for (auto& [name, enc] : std::vector<std::pair<std::string, std::shared_ptr<FakeEncoder>>>{
             {"emb", embed_}, {"cls", cls_}, {"ner", ner_}, {"rerank", rerank_}}) {
      ServedModel m;
      m.name = name;
      m.encoder = enc;
      ASSERT_TRUE(front_->add_model(std::move(m)).is_ok());
    }
    ASSERT_TRUE(front_->start().is_ok());
  }
  void TearDown() override { front_->shutdown(std::chrono::milliseconds(0)); }
  uint16_t port() const { return front_->port(); }

  // A generative model beside the encoders (stories260K).
  void add_generative() {
    const char* env = std::getenv("TURBINE_SHARED");
    const auto path = std::filesystem::path(env ? env : TURBINE_SHARED_DEFAULT) /
                      "models/stories260K/stories260K.gguf";
    auto model = model::load_model(path);
    ASSERT_TRUE(model.has_value()) << model.status().to_string();
    std::shared_ptr<const model::Model> m = std::move(*model);
    auto tok = tokenizer::make_tokenizer(m->vocab());
    ASSERT_TRUE(tok.has_value());
    ASSERT_TRUE(
        front_->add_model({"gen", m, std::move(*tok), std::make_shared<testing::FakeEngine>(), {}})
            .is_ok());
  }

  std::shared_ptr<FakeEncoder> embed_ = std::make_shared<FakeEncoder>(EncoderTask::kEmbedding);
  std::shared_ptr<FakeEncoder> cls_ = std::make_shared<FakeEncoder>(EncoderTask::kClassification);
  std::shared_ptr<FakeEncoder> ner_ =
      std::make_shared<FakeEncoder>(EncoderTask::kTokenClassification);
  std::shared_ptr<FakeEncoder> rerank_ = std::make_shared<FakeEncoder>(EncoderTask::kScore);
  std::unique_ptr<Frontend> front_;
};

json::object body_of(const Response& r) {
  return json::parse(r.body()).as_object();
}

void expect_error(const Response& r, int status, std::string_view param, std::string_view needle) {
  EXPECT_EQ(r.result_int(), status) << r.body();
  const json::object e = body_of(r).at("error").as_object();
  if (param.empty()) {
    EXPECT_TRUE(e.at("param").is_null()) << r.body();
  } else {
    EXPECT_EQ(e.at("param").as_string(), json::string_view(param.data(), param.size())) << r.body();
  }
  EXPECT_NE(std::string(e.at("message").as_string()).find(needle), std::string::npos) << r.body();
}

TEST_F(EncoderRoutesTest, EmbeddingsFloatBase64AndOptions) {
  auto r = post(port(), "/v1/embeddings",
                R"({"model":"emb","input":["a","b"],"dimensions":2,"truncate_prompt_tokens":7})");
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(r[bhttp::field::content_type], "application/json");
  const json::object o = body_of(r);
  EXPECT_EQ(o.at("model"), "emb");
  const json::array& data = o.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[1].at("embedding").as_array().size(), 2u);
  EXPECT_EQ(data[1].at("embedding").as_array()[0].to_number<double>(), 1.0);
  EXPECT_EQ(o.at("usage").at("prompt_tokens").as_int64(), 6);
  const encoder::EncoderRequest sent = embed_->last();
  EXPECT_EQ(sent.op, EncoderOp::kEmbed);
  EXPECT_EQ(sent.texts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(sent.options.dimensions, 2);
  EXPECT_EQ(sent.options.truncate_tokens, 7);

  auto b = post(port(), "/v1/embeddings",
                R"({"model":"emb","input":[[1,2]],)"
                R"("encoding_format":"base64"})");
  ASSERT_EQ(b.result_int(), 200) << b.body();
  // [0, 0.5, 2, -1] as little-endian float32.
  EXPECT_EQ(body_of(b).at("data").as_array()[0].at("embedding"), "AAAAAAAAAD8AAABAAACAvw==");
  EXPECT_EQ(embed_->last().token_inputs, (std::vector<std::vector<int32_t>>{{1, 2}}));
}

TEST_F(EncoderRoutesTest, EncoderErrorsKeepTheirStatusAndParam) {
  embed_->fail_ = invalid_argument("input[1] is empty", "input");
  expect_error(post(port(), "/v1/embeddings", R"({"model":"emb","input":["a",""]})"), 400, "input",
               "input[1] is empty");
  embed_->fail_ = Status(StatusCode::kUnavailable, "no worker serves model 'emb' right now");
  auto r = post(port(), "/v1/embeddings", R"({"model":"emb","input":"a"})");
  expect_error(r, 503, "", "no worker");
  embed_->fail_ = Status(StatusCode::kResourceExhausted, "the encoder queue is full");
  expect_error(post(port(), "/v1/embeddings", R"({"model":"emb","input":"a"})"), 429, "",
               "queue is full");
  // Parse errors never reach the encoder.
  const size_t before = embed_->count();
  expect_error(post(port(), "/v1/embeddings", R"({"model":"emb"})"), 400, "input", "required");
  expect_error(post(port(), "/v1/embeddings", R"({"model":"emb","input":"a","dimensions":0})"), 400,
               "dimensions", "");
  expect_error(post(port(), "/v1/embeddings", R"({"model":"nope","input":"a"})"), 404, "model",
               "does not exist");
  EXPECT_EQ(embed_->count(), before);
}

TEST_F(EncoderRoutesTest, ClassifyGivesLabelsOrEntities) {
  auto r = post(port(), "/classify", R"({"model":"cls","input":["x","y"]})");
  ASSERT_EQ(r.result_int(), 200) << r.body();
  const json::object o = body_of(r);
  EXPECT_EQ(o.at("data").as_array()[1].at("label"), "pos");
  EXPECT_EQ(o.at("data").as_array()[1].at("num_classes").as_int64(), 2);
  EXPECT_EQ(cls_->last().op, EncoderOp::kClassify);

  auto t = post(port(), "/v1/classify", R"({"model":"ner","input":"john lives here"})");
  ASSERT_EQ(t.result_int(), 200) << t.body();
  EXPECT_EQ(body_of(t).at("data").as_array()[0].at("entities").as_array()[0].at("word"), "john");
  EXPECT_EQ(ner_->last().op, EncoderOp::kClassifyTokens);
}

TEST_F(EncoderRoutesTest, RerankSortsCutsAndNamesDocuments) {
  for (const char* path : {"/v1/rerank", "/rerank", "/v2/rerank"}) {
    auto r = post(port(), path,
                  R"({"model":"rerank","query":"q","documents":["d0",{"text":"d1"},"d2"],)"
                  R"("top_n":2})");
    ASSERT_EQ(r.result_int(), 200) << path << " " << r.body();
    const json::array& res = body_of(r).at("results").as_array();
    ASSERT_EQ(res.size(), 2u);
    EXPECT_EQ(res[0].at("index").as_int64(), 0);  // scores 1, 1/2, 1/3
    EXPECT_EQ(res[1].at("document").at("text"), "d1");
    const encoder::EncoderRequest sent = rerank_->last();
    EXPECT_EQ(sent.op, EncoderOp::kScore);
    EXPECT_EQ(sent.queries, std::vector<std::string>{"q"});
    EXPECT_EQ(sent.input_field, "documents");
  }
  auto no_docs = post(port(), "/v1/rerank",
                      R"({"model":"rerank","query":"q","documents":["a"],)"
                      R"("return_documents":false})");
  ASSERT_EQ(no_docs.result_int(), 200);
  EXPECT_FALSE(body_of(no_docs).at("results").as_array()[0].as_object().contains("document"));
  // An embedding model reranks by cosine similarity: the same op.
  ASSERT_EQ(
      post(port(), "/rerank", R"({"model":"emb","query":"q","documents":["a"]})").result_int(),
      200);
  EXPECT_EQ(embed_->last().op, EncoderOp::kScore);
}

TEST_F(EncoderRoutesTest, ScorePairsText1WithText2) {
  auto r = post(port(), "/v1/score", R"({"model":"rerank","text_1":"q","text_2":["a","b"]})");
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(body_of(r).at("data").as_array().size(), 2u);
  EXPECT_EQ(rerank_->last().query_field, "text_1");
  EXPECT_EQ(rerank_->last().input_field, "text_2");
  expect_error(
      post(port(), "/score", R"({"model":"rerank","text_1":["a","b","c"],"text_2":["x"]})"), 400,
      "text_1", "as many");
}

TEST_F(EncoderRoutesTest, WrongEndpointForTheModelIsA400SayingWhy) {
  add_generative();
  // Generative endpoints on encoder models.
  auto chat = post(port(), "/v1/chat/completions",
                   R"({"model":"emb","messages":[{"role":"user","content":"hi"}]})");
  expect_error(chat, 400, "model", "/v1/embeddings");
  EXPECT_NE(chat.body().find("embedding model"), std::string::npos) << chat.body();
  expect_error(post(port(), "/v1/completions", R"({"model":"cls","prompt":"hi"})"), 400, "model",
               "/classify");
  expect_error(post(port(), "/tokenize", R"({"model":"rerank","prompt":"hi"})"), 400, "model",
               "/v1/rerank");
  // Encoder endpoints on a generative model.
  expect_error(post(port(), "/v1/embeddings", R"({"model":"gen","input":"a"})"), 400, "model",
               "generative model");
  // An encoder endpoint the model's task does not serve.
  expect_error(post(port(), "/v1/embeddings", R"({"model":"cls","input":"a"})"), 400, "model",
               "is a classification model");
  expect_error(post(port(), "/classify", R"({"model":"emb","input":"a"})"), 400, "model",
               "cannot classify");
  expect_error(post(port(), "/v1/rerank", R"({"model":"ner","query":"q","documents":["a"]})"), 400,
               "model", "cannot score");
}

TEST_F(EncoderRoutesTest, AnEmptyModelNameMeansTheFirstEncoderModel) {
  add_generative();
  // The first encoder model (by name) that serves the endpoint.
  auto r = post(port(), "/v1/embeddings", R"({"input":"a"})");
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(body_of(r).at("model"), "emb");
  auto c = post(port(), "/classify", R"({"input":"a"})");
  ASSERT_EQ(c.result_int(), 200) << c.body();
  EXPECT_EQ(body_of(c).at("model"), "cls");
  auto k = post(port(), "/v1/rerank", R"({"query":"q","documents":["a"]})");
  ASSERT_EQ(k.result_int(), 200) << k.body();
  EXPECT_EQ(body_of(k).at("model"), "emb");  // embedding models rerank too
}

}  // namespace
}  // namespace turbine::frontend

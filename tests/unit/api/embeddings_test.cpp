// The encoder endpoints' protocol (api/embeddings.h): every input form /v1/embeddings accepts, the
// 400s for the rest, /classify, rerank (Cohere/Jina document forms, top_n, return_documents),
// score pairings, base64 floats and the response bodies.
#include "api/embeddings.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cstring>

namespace turbine::api {
namespace {

namespace json = boost::json;

template <typename T>
void expect_invalid(const Result<T>& r, std::string_view param, std::string_view needle = {}) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
  EXPECT_EQ(r.status().field(), param) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

Result<EmbeddingsRequest> embeddings(std::string_view input, std::string_view extra = "") {
  return parse_embeddings_request(R"({"model":"e","input":)" + std::string(input) +
                                  std::string(extra) + "}");
}

TEST(EmbeddingsParseTest, EveryInputForm) {
  auto one = embeddings(R"("hello")");
  ASSERT_TRUE(one.has_value()) << one.status().to_string();
  EXPECT_EQ(one->model, "e");
  EXPECT_EQ(one->texts, std::vector<std::string>{"hello"});
  EXPECT_TRUE(one->token_inputs.empty());
  EXPECT_FALSE(one->base64);
  EXPECT_EQ(one->dimensions, 0);

  auto many = embeddings(R"(["a","b","c"])");
  ASSERT_TRUE(many.has_value());
  EXPECT_EQ(many->texts, (std::vector<std::string>{"a", "b", "c"}));

  auto ids = embeddings("[1,2,3]");
  ASSERT_TRUE(ids.has_value());
  ASSERT_EQ(ids->token_inputs.size(), 1u);
  EXPECT_EQ(ids->token_inputs[0], (std::vector<int32_t>{1, 2, 3}));
  EXPECT_TRUE(ids->texts.empty());

  auto lists = embeddings("[[1,2],[3],[]]");
  ASSERT_TRUE(lists.has_value());
  ASSERT_EQ(lists->token_inputs.size(), 3u);
  EXPECT_EQ(lists->token_inputs[1], std::vector<int32_t>{3});
  EXPECT_TRUE(lists->token_inputs[2].empty());  // the service says "input[2] is empty"

  // The model is optional (the first encoder model serves).
  auto no_model = parse_embeddings_request(R"({"input":"x"})");
  ASSERT_TRUE(no_model.has_value());
  EXPECT_TRUE(no_model->model.empty());
}

TEST(EmbeddingsParseTest, OptionsAreHonouredOrRefused) {
  auto r = embeddings(R"("x")", R"(,"encoding_format":"base64","dimensions":64,)"
                                R"("truncate_prompt_tokens":-1,"normalize":false,"user":"u",)"
                                R"("add_special_tokens":true)");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_TRUE(r->base64);
  EXPECT_EQ(r->dimensions, 64);
  EXPECT_TRUE(r->truncation.to_max);
  ASSERT_TRUE(r->normalize.has_value());
  EXPECT_FALSE(*r->normalize);
  auto k = embeddings(R"("x")", R"(,"truncate_prompt_tokens":12,"encoding_format":"float")");
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->truncation.tokens, 12);
  EXPECT_FALSE(k->truncation.to_max);
  EXPECT_FALSE(k->base64);

  expect_invalid(embeddings(R"("x")", R"(,"encoding_format":"int8")"), "encoding_format", "int8");
  expect_invalid(embeddings(R"("x")", R"(,"dimensions":0)"), "dimensions");
  expect_invalid(embeddings(R"("x")", R"(,"dimensions":"8")"), "dimensions");
  expect_invalid(embeddings(R"("x")", R"(,"truncate_prompt_tokens":0)"), "truncate_prompt_tokens");
  expect_invalid(embeddings(R"("x")", R"(,"truncate_prompt_tokens":-2)"), "truncate_prompt_tokens");
  expect_invalid(embeddings(R"("x")", R"(,"add_special_tokens":false)"), "add_special_tokens");
  expect_invalid(embeddings(R"("x")", R"(,"normalize":"yes")"), "normalize");
  expect_invalid(parse_embeddings_request(R"({"model":5,"input":"x"})"), "model");
}

TEST(EmbeddingsParseTest, BadInputsAreNamed) {
  expect_invalid(parse_embeddings_request(R"({"model":"e"})"), "input", "required");
  expect_invalid(embeddings("[]"), "input", "empty");
  expect_invalid(embeddings("5"), "input");
  expect_invalid(embeddings(R"({"text":"x"})"), "input");
  expect_invalid(embeddings(R"(["a",1])"), "input[1]");
  expect_invalid(embeddings(R"([1,"a"])"), "input");
  expect_invalid(embeddings("[1,-2]"), "input");
  expect_invalid(embeddings("[[1],2]"), "input[1]");
  expect_invalid(embeddings("[[1],[2.5]]"), "input[1]");
  expect_invalid(embeddings("[null]"), "input[0]");
  expect_invalid(parse_embeddings_request("not json"), "");
  expect_invalid(parse_embeddings_request("[1]"), "");
}

TEST(ClassifyParseTest, InputIsAStringOrStrings) {
  auto one = parse_classify_request(R"({"model":"c","input":"x","truncate_prompt_tokens":5})");
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->texts, std::vector<std::string>{"x"});
  EXPECT_EQ(one->truncation.tokens, 5);
  auto two = parse_classify_request(R"({"input":["x","y"]})");
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(two->texts.size(), 2u);
  expect_invalid(parse_classify_request(R"({"model":"c"})"), "input");
  expect_invalid(parse_classify_request(R"({"input":[]})"), "input", "empty");
  expect_invalid(parse_classify_request(R"({"input":[1,2]})"), "input[0]");
}

TEST(RerankParseTest, CohereAndJinaShapes) {
  auto r =
      parse_rerank_request(R"({"model":"r","query":"q","documents":["a",{"text":"b"}],"top_n":1,)"
                           R"("return_documents":false})");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_EQ(r->query, "q");
  EXPECT_EQ(r->documents, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r->top_n, 1);
  EXPECT_FALSE(r->return_documents);
  auto d = parse_rerank_request(R"({"query":"q","documents":["a"]})");
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->return_documents);
  EXPECT_EQ(d->top_n, 0);

  expect_invalid(parse_rerank_request(R"({"documents":["a"]})"), "query");
  expect_invalid(parse_rerank_request(R"({"query":"q"})"), "documents");
  expect_invalid(parse_rerank_request(R"({"query":"q","documents":[]})"), "documents", "empty");
  expect_invalid(parse_rerank_request(R"({"query":"q","documents":[{"title":"t"}]})"),
                 "documents[0]", "no text");
  expect_invalid(parse_rerank_request(R"({"query":"q","documents":[7]})"), "documents[0]");
  expect_invalid(parse_rerank_request(R"({"query":"q","documents":["a"],"top_n":-1})"), "top_n");
  expect_invalid(parse_rerank_request(R"({"query":"q","documents":["a"],"max_chunks_per_doc":2})"),
                 "max_chunks_per_doc");
}

TEST(ScoreParseTest, OneToManyAndPairwise) {
  auto one = parse_score_request(R"({"model":"s","text_1":"q","text_2":["a","b"]})");
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->text_1.size(), 1u);
  EXPECT_EQ(one->text_2.size(), 2u);
  auto pairs = parse_score_request(R"({"text_1":["q","r"],"text_2":["a","b"]})");
  ASSERT_TRUE(pairs.has_value());
  expect_invalid(parse_score_request(R"({"text_1":["q","r","s"],"text_2":["a","b"]})"), "text_1",
                 "as many");
  expect_invalid(parse_score_request(R"({"text_1":"q"})"), "text_2");
  expect_invalid(parse_score_request(R"({"text_1":[],"text_2":"a"})"), "text_1");
}

std::vector<float> decode_base64_floats(const std::string& s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i + 3 < s.size(); i += 4) {
    uint32_t w = 0;
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const int v = s[i + k] == '=' ? (++pad, 0) : val(s[i + k]);
      w = (w << 6) | static_cast<uint32_t>(v);
    }
    bytes.push_back(static_cast<uint8_t>(w >> 16));
    if (pad < 2) bytes.push_back(static_cast<uint8_t>(w >> 8));
    if (pad < 1) bytes.push_back(static_cast<uint8_t>(w));
  }
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

TEST(EmbeddingsResponseTest, FloatAndBase64Bodies) {
  const std::vector<std::vector<float>> v = {{0.5f, -1.25f, 3.0f}, {1e-8f, 0.1f}};
  const std::string body = embeddings_response("embd_1", 7, "e", v, false, {5});
  const json::object o = json::parse(body).as_object();
  EXPECT_EQ(o.at("object"), "list");
  EXPECT_EQ(o.at("model"), "e");
  EXPECT_EQ(o.at("id"), "embd_1");
  const json::array& data = o.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[1].at("index").as_int64(), 1);
  EXPECT_EQ(data[1].at("object"), "embedding");
  EXPECT_EQ(data[0].at("embedding").as_array().size(), 3u);
  EXPECT_EQ(data[0].at("embedding").as_array()[1].to_number<double>(), -1.25);
  EXPECT_EQ(o.at("usage").at("prompt_tokens").as_int64(), 5);
  EXPECT_EQ(o.at("usage").at("total_tokens").as_int64(), 5);

  const json::object b = json::parse(embeddings_response("x", 7, "e", v, true, {5})).as_object();
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string s(b.at("data").as_array()[i].at("embedding").as_string());
    EXPECT_EQ(decode_base64_floats(s), v[i]) << s;
  }
  // The RFC 4648 example bytes "foob" -> "Zm9vYg==" (one float's bytes are 4).
  float f;
  std::memcpy(&f, "foob", 4);
  EXPECT_EQ(base64_floats(&f, 1), "Zm9vYg==");
}

TEST(ClassifyResponseTest, LabelsAndEntities) {
  std::vector<ClassifyItem> items(2);
  items[0].label = "positive";
  items[0].probs = {0.25f, 0.75f};
  items[1].token_level = true;
  items[1].entities.push_back({"PER", 0.9f, "john", 0, 4});
  const json::object o = json::parse(classify_response("c1", 1, "m", items, {9})).as_object();
  const json::array& data = o.at("data").as_array();
  EXPECT_EQ(data[0].at("label"), "positive");
  EXPECT_EQ(data[0].at("num_classes").as_int64(), 2);
  EXPECT_EQ(data[0].at("probs").as_array().size(), 2u);
  EXPECT_EQ(data[1].at("entities").as_array()[0].at("entity_group"), "PER");
  EXPECT_EQ(data[1].at("entities").as_array()[0].at("end").as_int64(), 4);
  EXPECT_EQ(o.at("usage").at("completion_tokens").as_int64(), 0);
}

TEST(RerankResponseTest, SortedCutAndDocumentsOnRequest) {
  const auto ranked = rank({0.1f, 0.9f, 0.5f, 0.9f}, 3);
  ASSERT_EQ(ranked.size(), 3u);
  EXPECT_EQ(ranked[0].index, 1);  // ties keep input order
  EXPECT_EQ(ranked[1].index, 3);
  EXPECT_EQ(ranked[2].index, 2);
  EXPECT_EQ(rank({0.1f, 0.2f}, 0).size(), 2u);
  const std::vector<std::string> docs = {"a", "b", "c", "d"};
  const json::object with =
      json::parse(rerank_response("r", "m", ranked, docs, true, {12})).as_object();
  EXPECT_EQ(with.at("results").as_array()[0].at("document").at("text"), "b");
  EXPECT_EQ(with.at("usage").at("total_tokens").as_int64(), 12);
  const json::object without =
      json::parse(rerank_response("r", "m", ranked, docs, false, {12})).as_object();
  EXPECT_FALSE(without.at("results").as_array()[0].as_object().contains("document"));
  EXPECT_NEAR(without.at("results").as_array()[0].at("relevance_score").to_number<double>(), 0.9,
              1e-6);
}

TEST(ScoreResponseTest, OneScorePerPair) {
  const json::object o = json::parse(score_response("s", 1, "m", {0.5f, 0.25f}, {3})).as_object();
  ASSERT_EQ(o.at("data").as_array().size(), 2u);
  EXPECT_EQ(o.at("data").as_array()[1].at("object"), "score");
  EXPECT_EQ(o.at("data").as_array()[1].at("score").to_number<double>(), 0.25);
}

}  // namespace
}  // namespace turbine::api

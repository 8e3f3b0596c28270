// Test doubles for the frontend's stages: a tiny tokenizer, an AsyncEngine driven by the test, a
// ResponseWriter that records what it is given, and a one-thread io_context runner.
#pragma once

#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "engine/async_engine.h"
#include "http/router.h"
#include "tokenizer/tokenizer.h"

namespace turbine::frontend::testing {

// Vocabulary: 0 "<s>" (BOS, special), 1 "</s>" (EOS, special), then the pieces below. encode()
// takes the longest piece at each position (unknown bytes are skipped).
class FakeTokenizer final : public tokenizer::Tokenizer {
 public:
  FakeTokenizer()
      : pieces_{"<s>", "</s>", " Hello", " world", "!", " STOP", " a", " b", " c", "\xC3", "\xA9",
                " the", " end", "x", "<think>", "</think>", " very-long-token-of-24b", "<",
                // Tool-call markup and pieces of call bodies (Hermes, a JSON array, arguments).
                "<tool_call>", "</tool_call>", R"({"name": "f", )", R"({"name": "g", )",
                R"("arguments": )", R"("parameters": )", R"({"x": 1})", "{}", "}", "[", "]"} {}

  std::vector<int32_t> encode(std::string_view text, bool add_special) const override {
    std::vector<int32_t> ids;
    if (add_special) ids.push_back(0);
    size_t at = 0;
    while (at < text.size()) {
      int32_t best = -1;
      size_t best_len = 0;
      for (int32_t id = 2; id < vocab_size(); ++id) {
        const std::string& p = pieces_[static_cast<size_t>(id)];
        if (p.size() > best_len && text.substr(at, p.size()) == p) {
          best = id;
          best_len = p.size();
        }
      }
      if (best < 0) {
        ++at;
        continue;
      }
      ids.push_back(best);
      at += best_len;
    }
    return ids;
  }
  std::string token_bytes(int32_t id) const override {
    if (id < 2) return "";
    return pieces_.at(static_cast<size_t>(id));
  }
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string out;
    int32_t prev = -1;
    for (int32_t id : ids) {
      out += token_text(prev, id, skip_special);
      prev = id;
    }
    return out;
  }
  // As SentencePiece: the first piece of the text (after BOS or nothing) loses its space.
  std::string token_text(int32_t prev_id, int32_t id, bool skip_special) const override {
    std::string t = Tokenizer::token_text(prev_id, id, skip_special);
    if (prev_id <= 0 && !t.empty() && t[0] == ' ') t.erase(0, 1);
    return t;
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const override { return 0; }
  int32_t eos_id() const override { return 1; }
  bool is_special(int32_t id) const override { return id < 2; }
  std::string piece(int32_t id) const override { return pieces_.at(static_cast<size_t>(id)); }

  int32_t id(std::string_view piece) const {
    for (size_t i = 0; i < pieces_.size(); ++i) {
      if (pieces_[i] == piece) return static_cast<int32_t>(i);
    }
    ADD_FAILURE() << "no piece " << piece;
    return -1;
  }

 private:
  std::vector<std::string> pieces_;
};

// An AsyncEngine whose outputs the test sends (emit) from the test thread. submit/cancel may
// come from another thread (a server's I/O thread): they lock `mu`; tests that share the engine
// with a server read the vectors through submitted_count().
class FakeEngine final : public engine::AsyncEngine {
 public:
  Status submit(engine::EngineRequest request) override {
    std::lock_guard lock(mu);
    if (fail_submit_at >= 0 && static_cast<int>(submitted.size()) == fail_submit_at) {
      return fail_status;
    }
    ids.push_back(request.id);
    submitted.push_back(std::move(request));
    return Status::ok();
  }
  void cancel(uint64_t id) override {
    std::lock_guard lock(mu);
    cancelled.push_back(id);
  }
  size_t submitted_count() const {
    std::lock_guard lock(mu);
    return submitted.size();
  }
  void shutdown() override {}
  engine::EngineStats stats() const override { return {}; }
  int max_context() const override { return context; }
  int num_slots() const override { return 4; }
  int block_size() const override { return 16; }

  // Sends an output for the i-th submitted request.
  void emit(size_t i, std::vector<int32_t> tokens,
            engine::FinishReason finish = engine::FinishReason::kNone, Status error = {}) {
    engine::OutputCallback callback;
    size_t prompt_size = 0;
    {
      std::lock_guard lock(mu);
      callback = submitted.at(i).on_output;
      prompt_size = submitted.at(i).prompt.size();
    }
    engine::EngineOutput out;
    for (int32_t t : tokens) out.tokens.push_back({t, -0.5f, {}});
    out.finish = finish;
    out.error = std::move(error);
    out.prompt_tokens = static_cast<int>(prompt_size);
    out.cached_tokens = cached_tokens;
    out.prompt_logprobs = std::move(prompt_logprobs);  // the next output carries them
    prompt_logprobs.clear();
    callback(std::move(out));
  }

  mutable std::mutex mu;

  std::vector<engine::EngineRequest> submitted;
  std::vector<uint64_t> ids;
  std::vector<uint64_t> cancelled;
  int fail_submit_at = -1;  // >= 0: that submit (0-based) fails with fail_status
  Status fail_status{StatusCode::kResourceExhausted, "the queue is full"};
  int context = 64;
  int cached_tokens = 0;
  std::vector<engine::SampledToken> prompt_logprobs;  // sent with the next emit()
};

// Records a response.
class FakeWriter final : public http::ResponseWriter {
 public:
  boost::asio::awaitable<bool> send(int s, std::string type, std::string b,
                                    http::Headers extra) override {
    status = s;
    content_type = std::move(type);
    body = std::move(b);
    headers = std::move(extra);
    sent = true;
    co_return !gone;
  }
  boost::asio::awaitable<bool> start_stream(int s, std::string type, http::Headers extra) override {
    status = s;
    content_type = std::move(type);
    headers = std::move(extra);
    streaming = true;
    co_return !gone;
  }
  boost::asio::awaitable<bool> write_chunk(std::string_view data) override {
    if (gone) co_return false;
    if (!data.empty()) chunks.emplace_back(data);
    co_return true;
  }
  boost::asio::awaitable<bool> end_stream() override {
    ended = true;
    co_return !gone;
  }
  bool client_gone() const override { return gone; }
  void on_disconnect(std::function<void()> callback) override {
    if (gone) {
      callback();
    } else {
      callbacks.push_back(std::move(callback));
    }
  }

  // The client goes away: callbacks run (as the server runs them, on the strand).
  void disconnect() {
    gone = true;
    for (auto& c : callbacks) c();
    callbacks.clear();
  }
  std::string stream() const {
    std::string all;
    for (const auto& c : chunks) all += c;
    return all;
  }
  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return {};
  }

  int status = 0;
  std::string content_type;
  std::string body;
  http::Headers headers;
  std::vector<std::string> chunks;
  bool sent = false;
  bool streaming = false;
  bool ended = false;
  bool gone = false;
  std::vector<std::function<void()>> callbacks;
};

// Runs a coroutine on a one-thread io_context, step by step.
class Loop {
 public:
  void spawn(boost::asio::awaitable<void> task) {
    boost::asio::co_spawn(io_, std::move(task), [this](std::exception_ptr e) {
      done_ = true;
      error_ = e;
    });
  }
  // Runs everything that is ready.
  void poll() {
    io_.restart();
    io_.poll();
    if (error_) std::rethrow_exception(error_);
  }
  bool done() const { return done_; }
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  bool done_ = false;
  std::exception_ptr error_;
};

}  // namespace turbine::frontend::testing

#include "encoder/encoder_engine.h"

#include <algorithm>
#include <future>

namespace turbine::encoder {

Status EncoderEngineOptions::validate() const {
  if (max_batch_tokens <= 0) return invalid_argument("max_batch_tokens must be positive");
  if (max_batch_seqs <= 0) return invalid_argument("max_batch_seqs must be positive");
  if (max_queue == 0) return invalid_argument("max_queue must be positive");
  return Status::ok();
}

EncoderEngine::EncoderEngine(std::unique_ptr<EncoderBackend> backend, EncoderEngineOptions options)
    : options_(options),
      backend_(std::move(backend)),
      hidden_dim_(backend_->hidden_dim()),
      max_tokens_(backend_->max_tokens()) {
  thread_ = std::thread([this] { loop(); });
}

EncoderEngine::~EncoderEngine() {
  shutdown();
}

void EncoderEngine::submit(EncodeJob job, EncodeCallback done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && queue_.size() < options_.max_queue) {
      queue_.push_back({std::move(job), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping = stopping_;
  }
  done(stopping ? Status(StatusCode::kUnavailable, "the encoder engine is shutting down")
                : Status(StatusCode::kResourceExhausted, "the encoder queue is full"));
}

std::vector<EncodeResult> EncoderEngine::run(std::vector<EncodeJob> jobs) {
  std::vector<std::promise<EncodeResult>> promises(jobs.size());
  std::vector<std::future<EncodeResult>> futures;
  futures.reserve(jobs.size());
  for (auto& p : promises) futures.push_back(p.get_future());
  for (size_t i = 0; i < jobs.size(); ++i) {
    submit(std::move(jobs[i]), [p = &promises[i]](EncodeResult r) { p->set_value(std::move(r)); });
  }
  std::vector<EncodeResult> out;
  out.reserve(futures.size());
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

void EncoderEngine::shutdown() {
  std::deque<Pending> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
  }
  for (Pending& p : left)
    p.done(Status(StatusCode::kUnavailable, "the encoder engine is shutting down"));
}

EncoderEngineStats EncoderEngine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  EncoderEngineStats s = stats_;
  s.queued = queue_.size();
  return s;
}

void EncoderEngine::loop() {
  EncoderBatch batch;
  std::vector<Pending> taken;
  std::vector<float> rows;
  for (;;) {
    taken.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      // FIFO under the token budget; the first job always goes (a long one runs alone).
      size_t tokens = 0;
      while (!queue_.empty() && taken.size() < static_cast<size_t>(options_.max_batch_seqs)) {
        const size_t n = queue_.front().job.ids.size();
        if (!taken.empty() && tokens + n > static_cast<size_t>(options_.max_batch_tokens)) break;
        tokens += n;
        taken.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    // Jobs the backend would refuse fail alone instead of failing their batch.
    batch.clear();
    std::vector<Pending*> in_batch;
    for (Pending& p : taken) {
      const EncodeJob& j = p.job;
      if (j.ids.empty()) {
        p.done(invalid_argument("empty input", "input"));
        continue;
      }
      if (static_cast<int64_t>(j.ids.size()) > max_tokens_) {
        p.done(invalid_argument("input of " + std::to_string(j.ids.size()) +
                                    " tokens is longer than the model's maximum of " +
                                    std::to_string(max_tokens_),
                                "input"));
        continue;
      }
      if (!j.type_ids.empty() && j.type_ids.size() != j.ids.size()) {
        p.done(invalid_argument("type ids do not match the tokens", "input"));
        continue;
      }
      batch.ids.insert(batch.ids.end(), j.ids.begin(), j.ids.end());
      if (j.type_ids.empty()) {
        batch.type_ids.insert(batch.type_ids.end(), j.ids.size(), 0);
      } else {
        batch.type_ids.insert(batch.type_ids.end(), j.type_ids.begin(), j.type_ids.end());
      }
      batch.seq_begin.push_back(static_cast<int32_t>(batch.ids.size()));
      batch.outputs.push_back(j.output);
      in_batch.push_back(&p);
    }
    if (in_batch.empty()) continue;
    const Status st = backend_->forward(batch, rows);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.batches;
      stats_.sequences += in_batch.size();
      stats_.tokens += batch.ids.size();
    }
    if (!st.is_ok()) {
      for (Pending* p : in_batch) p->done(st);
      continue;
    }
    const auto d = static_cast<size_t>(hidden_dim_);
    size_t row = 0;
    for (size_t s = 0; s < in_batch.size(); ++s) {
      const size_t n = batch.outputs[s] == Output::kAllTokens
                           ? static_cast<size_t>(batch.seq_begin[s + 1] - batch.seq_begin[s])
                           : 1;
      std::vector<float> mine(rows.begin() + static_cast<std::ptrdiff_t>(row * d),
                              rows.begin() + static_cast<std::ptrdiff_t>((row + n) * d));
      row += n;
      in_batch[s]->done(std::move(mine));
    }
  }
}

}  // namespace turbine::encoder

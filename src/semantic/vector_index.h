// VectorIndex: nearest neighbours by cosine over unit vectors, for the semantic cache.
//
// Below `exact_max` vectors it scans them all (exact, and faster at small sizes). At `exact_max`
// it builds an HNSW graph (hnswlib, inner-product space) *aside*: the vectors are copied under the
// index's lock, the graph is built outside it (on the BuildExecutor's thread, or inline on the
// caller's thread without one) and published by swapping a shared_ptr. A published graph is never
// modified, so searches read it without any lock. Vectors added after a graph's snapshot form
// the "tail", searched exactly beside the graph; when the tail reaches max(64, exact_max / 4), or
// removed vectors still in the graph outnumber the live ones, a new graph is built aside over
// every live vector. Below exact_max / 2 the graph is dropped again. Graph results are filtered
// against the live set, so a removed vector never comes back.
// Lookups therefore never wait for a build (1.2 s at 2,048 x 384-d) or an HNSW insert; they hold
// the index's mutex only for the tail scan, inserts and removals only for a row copy. The
// crossover is measured by bench/semantic_bench (docs/PERFORMANCE.md).
//
// Thread-safety: every method may be called from any thread at once. A build job holds the
// index's state by shared_ptr, so the index may be destroyed while one runs (its result is
// dropped).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace turbine::semantic {

struct HnswParams {
  size_t m = 16;
  size_t ef_construction = 200;
  size_t ef_search = 64;
};

// Runs a graph build somewhere else; empty: inline on the thread that triggered it.
using BuildExecutor = std::function<void(std::function<void()>)>;

// One background thread running build jobs in order (the semantic cache owns one for all its
// partitions). Thread ownership: the thread starts with the first post() and is joined by the
// destructor; jobs still queued then are dropped.
class IndexBuilder {
 public:
  IndexBuilder() = default;
  ~IndexBuilder();
  IndexBuilder(const IndexBuilder&) = delete;
  IndexBuilder& operator=(const IndexBuilder&) = delete;

  void post(std::function<void()> job);
  // Blocks until no job is queued or running (tests, benchmarks).
  void drain();
  BuildExecutor executor() {
    return [this](std::function<void()> job) { post(std::move(job)); };
  }

 private:
  void run();
  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool running_job_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

class VectorIndex {
 public:
  VectorIndex(size_t dim, size_t exact_max, HnswParams params, BuildExecutor executor = {});
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  size_t dim() const { return dim_; }
  size_t size() const;
  bool uses_hnsw() const;    // a graph is published
  size_t tail_size() const;  // live vectors searched exactly (all of them without a graph)
  bool building() const;     // a build was started and not yet published

  // `v` has dim() floats, unit length. Re-adding an id replaces its vector.
  void add(uint64_t id, const float* v);
  void remove(uint64_t id);
  // Up to k (id, cosine) pairs, most similar first.
  std::vector<std::pair<uint64_t, float>> search(const float* q, size_t k) const;

  struct State;  // vector_index.cpp

 private:
  const size_t dim_;
  const BuildExecutor executor_;
  std::shared_ptr<State> state_;
};

// Scales `v` to unit length in place; false when it is all zeros (not indexable).
bool normalize_vector(std::vector<float>& v);

}  // namespace turbine::semantic

// VectorIndex: nearest neighbours by cosine over unit vectors, for the semantic cache.
//
// Below `exact_max` vectors it scans them all (exact, and faster at small sizes); at `exact_max`
// it builds an HNSW graph (hnswlib, inner-product space) over them and searches that; below
// exact_max / 2 it drops the graph again. Removals are swap-with-last in the flat store and
// markDelete in the graph, which is rebuilt when deleted points outnumber live ones. The flat
// store is always kept (it is what a rebuild reads). The crossover is measured by
// bench/semantic_bench (docs/PERFORMANCE.md).
// Thread ownership: none; the owner serialises calls (SemanticCache holds its mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

namespace turbine::semantic {

struct HnswParams {
  size_t m = 16;
  size_t ef_construction = 200;
  size_t ef_search = 64;
};

class VectorIndex {
 public:
  VectorIndex(size_t dim, size_t exact_max, HnswParams params);
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  size_t dim() const { return dim_; }
  size_t size() const { return ids_.size(); }
  bool uses_hnsw() const { return hnsw_ != nullptr; }

  // `v` has dim() floats, unit length. Re-adding an id replaces its vector.
  void add(uint64_t id, const float* v);
  void remove(uint64_t id);
  // Up to k (id, cosine) pairs, most similar first.
  std::vector<std::pair<uint64_t, float>> search(const float* q, size_t k) const;

 private:
  void build_hnsw();
  struct Hnsw;

  size_t dim_;
  size_t exact_max_;
  HnswParams params_;
  std::vector<float> vectors_;  // size() x dim_, row i belongs to ids_[i]
  std::vector<uint64_t> ids_;
  std::unordered_map<uint64_t, size_t> slot_;
  std::unique_ptr<Hnsw> hnsw_;
};

// Scales `v` to unit length in place; false when it is all zeros (not indexable).
bool normalize_vector(std::vector<float>& v);

}  // namespace turbine::semantic

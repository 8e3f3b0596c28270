#include "semantic/vector_index.h"

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <cmath>

namespace turbine::semantic {

struct VectorIndex::Hnsw {
  hnswlib::InnerProductSpace space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
  size_t deleted = 0;
  explicit Hnsw(size_t dim) : space(dim) {}
};

bool normalize_vector(std::vector<float>& v) {
  double sum = 0;
  for (float x : v) sum += static_cast<double>(x) * x;
  if (sum <= 0.0 || !std::isfinite(sum)) return false;
  float inv = static_cast<float>(1.0 / std::sqrt(sum));
  for (float& x : v) x *= inv;
  return true;
}

VectorIndex::VectorIndex(size_t dim, size_t exact_max, HnswParams params)
    : dim_(dim), exact_max_(exact_max), params_(params) {}

VectorIndex::~VectorIndex() = default;

namespace {
// Eight independent partial sums: without -ffast-math the compiler keeps one serial add chain,
// which made the exact scan latency-bound (about 8x slower at 384 dimensions).
float dot(const float* a, const float* b, size_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t k = 0; k < 8; ++k) s[k] += a[i + k] * b[i + k];
  }
  float t = 0;
  for (; i < n; ++i) t += a[i] * b[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + t;
}
}  // namespace

void VectorIndex::build_hnsw() {
  // hnswlib reports allocation failures by throwing; the index then stays exact.
  try {
    auto h = std::make_unique<Hnsw>(dim_);
    size_t cap = std::max<size_t>(ids_.size() * 2, 64);
    h->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(&h->space, cap, params_.m,
                                                                 params_.ef_construction, 42);
    h->graph->setEf(params_.ef_search);
    for (size_t i = 0; i < ids_.size(); ++i) {
      h->graph->addPoint(vectors_.data() + i * dim_, static_cast<hnswlib::labeltype>(ids_[i]));
    }
    hnsw_ = std::move(h);
  } catch (const std::exception&) {
    hnsw_.reset();
  }
}

void VectorIndex::add(uint64_t id, const float* v) {
  auto it = slot_.find(id);
  if (it != slot_.end()) {
    std::copy(v, v + dim_, vectors_.begin() + it->second * dim_);
  } else {
    slot_[id] = ids_.size();
    ids_.push_back(id);
    vectors_.insert(vectors_.end(), v, v + dim_);
  }
  if (hnsw_) {
    try {
      auto& g = *hnsw_->graph;
      // (Re-adding a label updates it, and un-deletes it if it was deleted.)
      if (g.cur_element_count + 1 > g.max_elements_) g.resizeIndex(g.max_elements_ * 2);
      g.addPoint(v, static_cast<hnswlib::labeltype>(id));
    } catch (const std::exception&) {
      hnsw_.reset();  // fall back to exact search; rebuilt at the next threshold crossing
    }
  } else if (ids_.size() >= exact_max_ && exact_max_ > 0) {
    build_hnsw();
  }
}

void VectorIndex::remove(uint64_t id) {
  auto it = slot_.find(id);
  if (it == slot_.end()) return;
  size_t s = it->second;
  size_t last = ids_.size() - 1;
  if (s != last) {
    std::copy(vectors_.begin() + last * dim_, vectors_.begin() + (last + 1) * dim_,
              vectors_.begin() + s * dim_);
    ids_[s] = ids_[last];
    slot_[ids_[s]] = s;
  }
  ids_.pop_back();
  vectors_.resize(ids_.size() * dim_);
  slot_.erase(it);
  if (hnsw_) {
    try {
      hnsw_->graph->markDelete(static_cast<hnswlib::labeltype>(id));
      ++hnsw_->deleted;
    } catch (const std::exception&) {
    }
    if (ids_.size() < exact_max_ / 2) {
      hnsw_.reset();
    } else if (hnsw_->deleted > ids_.size()) {
      build_hnsw();
    }
  }
}

std::vector<std::pair<uint64_t, float>> VectorIndex::search(const float* q, size_t k) const {
  std::vector<std::pair<uint64_t, float>> out;
  if (ids_.empty() || k == 0) return out;
  if (hnsw_) {
    try {
      auto pq = hnsw_->graph->searchKnn(q, std::min(k, ids_.size()));
      while (!pq.empty()) {
        // Inner-product space distance is 1 - dot.
        out.emplace_back(static_cast<uint64_t>(pq.top().second), 1.0f - pq.top().first);
        pq.pop();
      }
      std::reverse(out.begin(), out.end());
      return out;
    } catch (const std::exception&) {
      out.clear();  // fall through to the exact scan
    }
  }
  out.reserve(ids_.size());
  for (size_t i = 0; i < ids_.size(); ++i) {
    out.emplace_back(ids_[i], dot(q, vectors_.data() + i * dim_, dim_));
  }
  size_t n = std::min(k, out.size());
  std::partial_sort(out.begin(), out.begin() + n, out.end(),
                    [](const auto& a, const auto& b) { return a.second > b.second; });
  out.resize(n);
  return out;
}

}  // namespace turbine::semantic

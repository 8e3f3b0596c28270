#include "encoder/routed_encoder.h"

#include <algorithm>
#include <limits>

namespace turbine::encoder {

struct RoutedEncoder::Attempt {
  EncoderRequest request;  // kept for retries
  EncoderCallback done;
  std::vector<uint64_t> tried;
};

RoutedEncoder::RoutedEncoder(std::string model_name, int retry_limit)
    : model_name_(std::move(model_name)), retry_limit_(std::max(0, retry_limit)) {}

void RoutedEncoder::add_worker(uint64_t id, std::shared_ptr<AsyncEncoder> worker,
                               EncoderInfo info) {
  std::lock_guard lock(mu_);
  workers_[id] = std::move(worker);
  if (!has_info_ || workers_.size() == 1) {
    info_ = std::move(info);
    has_info_ = true;
  }
}

void RoutedEncoder::remove_worker(uint64_t id) {
  std::lock_guard lock(mu_);
  workers_.erase(id);
}

size_t RoutedEncoder::n_workers() const {
  std::lock_guard lock(mu_);
  return workers_.size();
}

std::vector<uint64_t> RoutedEncoder::workers() const {
  std::lock_guard lock(mu_);
  std::vector<uint64_t> ids;
  for (const auto& [id, w] : workers_) ids.push_back(id);
  return ids;
}

EncoderInfo RoutedEncoder::info() const {
  std::lock_guard lock(mu_);
  return info_;
}

int RoutedEncoder::in_flight() const {
  std::vector<std::shared_ptr<AsyncEncoder>> ws;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, w] : workers_) ws.push_back(w);
  }
  int n = 0;
  for (const auto& w : ws) n += w->in_flight();
  return n;
}

void RoutedEncoder::shutdown() {
  std::lock_guard lock(mu_);
  shut_down_ = true;
}

std::shared_ptr<AsyncEncoder> RoutedEncoder::pick(const std::vector<uint64_t>& tried,
                                                  uint64_t& id) {
  std::vector<std::pair<uint64_t, std::shared_ptr<AsyncEncoder>>> candidates;
  size_t start = 0;
  {
    std::lock_guard lock(mu_);
    if (shut_down_) return nullptr;
    for (const auto& [wid, w] : workers_) {
      if (std::find(tried.begin(), tried.end(), wid) == tried.end())
        candidates.emplace_back(wid, w);
    }
    if (candidates.empty()) return nullptr;
    start = static_cast<size_t>(rotate_++ % candidates.size());
  }
  // in_flight() is read outside the lock: workers may call back into this router.
  std::shared_ptr<AsyncEncoder> best;
  int best_load = std::numeric_limits<int>::max();
  for (size_t k = 0; k < candidates.size(); ++k) {
    auto& [wid, w] = candidates[(start + k) % candidates.size()];
    const int load = w->in_flight();
    if (load < best_load) {
      best_load = load;
      best = w;
      id = wid;
    }
  }
  return best;
}

void RoutedEncoder::submit(EncoderRequest request, EncoderCallback done) {
  auto a = std::make_shared<Attempt>();
  a->request = std::move(request);
  a->done = std::move(done);
  dispatch(std::move(a));
}

void RoutedEncoder::dispatch(std::shared_ptr<Attempt> a) {
  uint64_t id = 0;
  std::shared_ptr<AsyncEncoder> worker = pick(a->tried, id);
  if (!worker) {
    EncoderCallback done = std::move(a->done);
    done(Status(StatusCode::kUnavailable,
                a->tried.empty() ? "no worker serves model '" + model_name_ + "' right now"
                                 : "every worker of model '" + model_name_ + "' failed",
                "model"));
    return;
  }
  a->tried.push_back(id);
  // A retry needs the request again: the first attempts send a copy.
  const bool may_retry = static_cast<int>(a->tried.size()) <= retry_limit_;
  EncoderRequest request = may_retry ? a->request : std::move(a->request);
  // The callback holds the worker: one removed meanwhile finishes what it runs.
  worker->submit(std::move(request), [self = weak_from_this(), a, may_retry,
                                      worker](Result<EncoderResponse> r) {
    if (!r.has_value() && r.status().code() == StatusCode::kUnavailable && may_retry) {
      if (auto router = self.lock()) return router->dispatch(a);
    }
    EncoderCallback done = std::move(a->done);
    done(std::move(r));
  });
}

}  // namespace turbine::encoder

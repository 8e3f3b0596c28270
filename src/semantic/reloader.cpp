#include "semantic/reloader.h"

#include <sys/stat.h>

#include <chrono>

#include "semantic/config.h"
#include "semantic/stage.h"

namespace turbine::semantic {

ConfigReloader::ConfigReloader(SemanticStage& stage, std::string path, int poll_ms)
    : stage_(stage), path_(std::move(path)), poll_ms_(poll_ms > 0 ? poll_ms : 1000) {
  seen_ = stat_file();  // the stage was created from this version of the file
}

ConfigReloader::~ConfigReloader() {
  stop();
}

ConfigReloader::FileId ConfigReloader::stat_file() const {
  struct stat st {};
  FileId id;
  if (::stat(path_.c_str(), &st) != 0) return id;
  id.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  id.size = static_cast<int64_t>(st.st_size);
  id.inode = static_cast<uint64_t>(st.st_ino);
  return id;
}

Status ConfigReloader::reload_now() {
  std::lock_guard<std::mutex> lock(reload_mu_);
  seen_ = stat_file();
  auto config = load_semantic_config(path_);
  Status st = config.has_value() ? stage_.reload(*config) : config.status();
  // stage_.reload counts and logs its own failures; a parse failure goes to the same series.
  if (!config.has_value()) stage_.reload_failed(st);
  (st.is_ok() ? ok_ : failed_).fetch_add(1);
  return st;
}

void ConfigReloader::poll_once() {
  bool requested = requested_.exchange(false, std::memory_order_relaxed);
  FileId now = stat_file();
  bool changed;
  {
    std::lock_guard<std::mutex> lock(reload_mu_);
    changed = now.mtime_ns >= 0 && !(now == seen_);
  }
  if (requested || changed) (void)reload_now();
}

void ConfigReloader::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void ConfigReloader::stop() {
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ConfigReloader::run() {
  std::unique_lock<std::mutex> lock(run_mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    poll_once();
    lock.lock();
  }
}

}  // namespace turbine::semantic

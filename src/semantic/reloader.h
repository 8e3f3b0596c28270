// ConfigReloader: reloads a SemanticStage's config file on SIGHUP and when the file changes.
//
// A background thread polls every `poll_ms`: the file's (mtime, size, inode) — an editor's
// rename-over counts — and a flag set by request_reload(). A change parses the file and calls
// SemanticStage::reload; a file that does not parse or validate leaves the running config in
// place, is logged and counted (turbine_semantic_config_reloads_total{result="failed"}), and is
// not retried until the file changes again.
//
// Signals: request_reload() only stores to a lock-free atomic, so the process's SIGHUP handler
// may call it (cli/ owns signal handling; this module installs no handler).
// Thread ownership: the poll thread is created by start() and joined by stop()/the destructor;
// reload_now() may be called from any thread (reloads are serialised by a mutex).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"

namespace turbine::semantic {

class SemanticStage;

class ConfigReloader {
 public:
  ConfigReloader(SemanticStage& stage, std::string path, int poll_ms = 1000);
  ~ConfigReloader();
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  void start();
  void stop();
  // Async-signal-safe: asks the poll thread to reload at its next tick.
  void request_reload() { requested_.store(true, std::memory_order_relaxed); }
  // Reloads now; the Status of the parse/validate/build (not ok: the old config stays).
  Status reload_now();
  // Checks the file and the flag once, as the poll thread does (tests drive this directly).
  void poll_once();

  uint64_t reloads_ok() const { return ok_.load(); }
  uint64_t reloads_failed() const { return failed_.load(); }

 private:
  struct FileId {
    int64_t mtime_ns = -1;
    int64_t size = -1;
    uint64_t inode = 0;
    bool operator==(const FileId&) const = default;
  };
  FileId stat_file() const;
  void run();

  SemanticStage& stage_;
  const std::string path_;
  const int poll_ms_;
  std::atomic<bool> requested_{false};
  static_assert(std::atomic<bool>::is_always_lock_free, "request_reload runs in a signal handler");
  std::atomic<uint64_t> ok_{0};
  std::atomic<uint64_t> failed_{0};
  std::mutex reload_mu_;  // serialises reloads; guards seen_
  FileId seen_;
  std::mutex run_mu_;  // guards stopping_ (with cv_)
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace turbine::semantic

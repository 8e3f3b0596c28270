// A read-only memory-mapped file, or the file read into private memory (Mode::kRead, `--no-mmap`).
// Move-only; unmaps on destruction.
//
// A mapped file that shrinks on disk while mapped (`cp new.gguf model.gguf`, `rsync --inplace`)
// makes reads of its lost pages raise SIGBUS. The first mapping installs a SIGBUS handler that
// recognises addresses inside any live mapping, writes one line naming the file to stderr and
// exits with kModelFileChangedExitCode; other faults keep the default action. That table of live
// mappings is process-wide state, because a signal handler can reach nothing else (its entries
// are atomics, written by open and the destructor).
//
// Created by the loader thread; the mapping is immutable afterwards, so any thread may read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "common/status.h"

namespace turbine::model {

// The exit status after a mapped model file changed under the process (EX_IOERR).
inline constexpr int kModelFileChangedExitCode = 74;

class MappedFile {
 public:
  enum class Mode {
    kMap,   // mmap: pages come from the page cache on demand, shared with other processes
    kRead,  // read() into anonymous memory: immune to the file changing, costs RSS and load time
  };

  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  static Result<MappedFile> open(const std::filesystem::path& path, Mode mode = Mode::kMap);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void reset();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int slot_ = -1;  // its entry in the SIGBUS handler's table; -1: none (read, empty, or full)
  std::filesystem::path path_;
};

}  // namespace turbine::model

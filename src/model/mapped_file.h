// A read-only memory-mapped file. Move-only; unmaps on destruction.
//
// Created by the loader thread; the mapping is immutable afterwards, so any thread may read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "common/status.h"

namespace turbine::model {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  static Result<MappedFile> open(const std::filesystem::path& path);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void reset();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::filesystem::path path_;
};

}  // namespace turbine::model

#include "model/mapped_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

namespace turbine::model {
namespace {

// Live mappings, for the SIGBUS handler. A slot is claimed by CAS on `begin` from 0 to a
// placeholder, filled, then published by storing the real begin (release); freed by storing 0.
struct MappedRange {
  std::atomic<uintptr_t> begin{0};
  std::atomic<size_t> size{0};
  char path[480] = {};
};
constexpr uintptr_t kClaimed = 1;
std::array<MappedRange, 64> g_ranges;
struct sigaction g_previous_sigbus {};

void write_all(const char* s, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

// Async-signal-safe: atomics, write(2) and _exit(2) only.
void on_sigbus(int sig, siginfo_t* info, void* ctx) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (MappedRange& r : g_ranges) {
    const uintptr_t b = r.begin.load(std::memory_order_acquire);
    if (b <= kClaimed || addr < b || addr - b >= r.size.load(std::memory_order_relaxed)) continue;
    static constexpr char kHead[] = "turbine: fatal: the model file ";
    static constexpr char kTail[] =
        " changed on disk while it was mapped (truncated or rewritten in place). Replace model "
        "files by writing a new file and renaming it over the old one, or serve with --no-mmap. "
        "Exiting.\n";
    write_all(kHead, sizeof kHead - 1);
    write_all(r.path, ::strnlen(r.path, sizeof r.path));
    write_all(kTail, sizeof kTail - 1);
    ::_exit(kModelFileChangedExitCode);
  }
  // Not a model file: whatever was there before (by default, a core dump). The re-raised signal
  // is delivered once this handler returns (it is blocked while the handler runs).
  if ((g_previous_sigbus.sa_flags & SA_SIGINFO) != 0 && g_previous_sigbus.sa_sigaction != nullptr) {
    g_previous_sigbus.sa_sigaction(sig, info, ctx);
    return;
  }
  ::sigaction(SIGBUS, &g_previous_sigbus, nullptr);
  ::raise(sig);
}

void install_sigbus_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_previous_sigbus);
  });
}

int register_range(const void* begin, size_t size, const std::string& path) {
  install_sigbus_handler();
  for (size_t i = 0; i < g_ranges.size(); ++i) {
    MappedRange& r = g_ranges[i];
    uintptr_t expected = 0;
    if (!r.begin.compare_exchange_strong(expected, kClaimed)) continue;
    const size_t n = std::min(path.size(), sizeof r.path - 1);
    std::memcpy(r.path, path.data(), n);
    r.path[n] = '\0';
    r.size.store(size, std::memory_order_relaxed);
    r.begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
    return static_cast<int>(i);
  }
  return -1;  // more live mappings than slots: such a file's SIGBUS keeps the default action
}

void unregister_range(int slot) {
  if (slot >= 0) g_ranges[static_cast<size_t>(slot)].begin.store(0, std::memory_order_release);
}

}  // namespace

MappedFile::~MappedFile() {
  reset();
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(other.data_), size_(other.size_), slot_(other.slot_), path_(std::move(other.path_)) {
  other.data_ = nullptr;
  other.size_ = 0;
  other.slot_ = -1;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = other.data_;
    size_ = other.size_;
    slot_ = other.slot_;
    path_ = std::move(other.path_);
    other.data_ = nullptr;
    other.size_ = 0;
    other.slot_ = -1;
  }
  return *this;
}

void MappedFile::reset() {
  unregister_range(slot_);
  slot_ = -1;
  // Zero-length files are never mapped; data_ then points at a static empty buffer.
  if (data_ != nullptr && size_ > 0) munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

Result<MappedFile> MappedFile::open(const std::filesystem::path& path, Mode mode) {
  const std::string name = path.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string msg = name + ": cannot open: " + std::strerror(err);
    return err == ENOENT ? not_found(msg) : invalid_argument(msg);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return invalid_argument(name + ": not a regular file");
  }
  MappedFile f;
  f.path_ = path;
  f.size_ = static_cast<size_t>(st.st_size);
  if (f.size_ == 0) {
    static const uint8_t kEmpty[1] = {0};
    f.data_ = kEmpty;
    ::close(fd);
    return f;
  }
  if (mode == Mode::kRead) {
    // Anonymous memory, so that reset() unmaps either kind the same way.
    void* p = mmap(nullptr, f.size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      f.size_ = 0;
      return internal_error(name + ": cannot allocate " + std::to_string(st.st_size) +
                            " bytes: " + std::strerror(err));
    }
    f.data_ = static_cast<const uint8_t*>(p);
    size_t done = 0;
    while (done < f.size_) {
      const ssize_t n =
          ::pread(fd, static_cast<char*>(p) + done, f.size_ - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : 0;
        ::close(fd);
        return invalid_argument(name + ": read failed after " + std::to_string(done) + " of " +
                                std::to_string(f.size_) + " bytes" +
                                (err != 0 ? std::string(": ") + std::strerror(err)
                                          : std::string(" (the file shrank)")));
      }
      done += static_cast<size_t>(n);
    }
    ::close(fd);
    mprotect(p, f.size_, PROT_READ);  // a hint against stray writes; failure changes nothing
    return f;
  }
  void* p = mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps its own reference to the file
  if (p == MAP_FAILED) {
    f.size_ = 0;
    return internal_error(name + ": mmap failed: " + std::strerror(err));
  }
  f.data_ = static_cast<const uint8_t*>(p);
  std::error_code ec;
  const std::filesystem::path shown = std::filesystem::absolute(path, ec);
  f.slot_ = register_range(p, f.size_, ec ? name : shown.string());
  return f;
}

}  // namespace turbine::model

// snapshot_download: resolve the revision, pick the files, fetch each into blobs/ and link it
// into snapshots/<commit>/. The protocol mirrors huggingface_hub's file_download.py.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "hub/cache_layout.h"
#include "hub/file_selection.h"
#include "hub/http_client.h"
#include "hub/hub.h"

namespace turbine::hub {
namespace fs = std::filesystem;
namespace {

// Progress is reported at most once per this many bytes (plus at the start and the end), so
// a multi-GiB shard does not call back for every 16 KiB chunk.
constexpr std::uint64_t kProgressStepBytes = 1u << 20;

Status unavailable(std::string msg) {
  return {StatusCode::kUnavailable, std::move(msg)};
}

// An open file descriptor that closes itself.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Holds an exclusive flock() on a lock file for its lifetime.
Result<std::unique_ptr<UniqueFd>> lock_file(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    return internal_error("cannot create " + path.parent_path().string() + ": " + ec.message());
  auto fd = std::make_unique<UniqueFd>(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd->get() < 0) return internal_error("cannot open lock file " + path.string());
  while (::flock(fd->get(), LOCK_EX) != 0) {
    if (errno != EINTR) return internal_error("cannot lock " + path.string());
  }
  return fd;
}

std::optional<std::uint64_t> parse_u64(const std::string* text) {
  if (text == nullptr || text->empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : *text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

std::string describe_hub_error(const HttpResponse& r) {
  if (const auto* m = r.header("x-error-message")) return *m;
  boost::system::error_code ec;
  auto doc = boost::json::parse(r.body, ec);
  if (!ec && doc.is_object()) {
    if (const auto* e = doc.as_object().if_contains("error"); e && e->is_string()) {
      return std::string(e->as_string());
    }
  }
  return {};
}

struct FileMeta {
  std::string etag;
  std::optional<std::uint64_t> size;
};

class Downloader {
 public:
  Downloader(std::string repo_id, const HubOptions& options)
      : repo_id_(std::move(repo_id)),
        options_(options),
        endpoint_(trim_endpoint(options.endpoint)),
        cache_(options.cache_dir, repo_id_),
        http_(HttpClientOptions{options.token, options.connect_timeout_ms,
                                options.stall_timeout_ms}) {}

  Result<fs::path> run() {
    const std::string& revision = options_.revision;
    if (options_.offline) {
      if (auto dir = cache_.find_complete_snapshot(revision)) return *dir;
      return not_found("offline mode (HF_HUB_OFFLINE=1) and no complete copy of '" + repo_id_ +
                       "' at revision '" + revision + "' is cached in " +
                       options_.cache_dir.string() + "; unset HF_HUB_OFFLINE to download it");
    }
    // A commit never changes, so a complete snapshot of one needs no request at all.
    if (is_commit_hash(revision)) {
      if (auto dir = cache_.find_complete_snapshot(revision)) return *dir;
    }

    auto info = fetch_revision_info();
    if (!info) {
      if (info.status().code() == StatusCode::kUnavailable) {
        if (auto dir = cache_.find_complete_snapshot(revision)) {
          spdlog::warn("hub: {}; using the cached snapshot {}", info.status().message(),
                       dir->string());
          return *dir;
        }
      }
      return info.status();
    }
    const std::string commit = info->first;
    const std::vector<std::string>& siblings = info->second;

    // Counted again once the index has told which shards are needed.
    file_count_ = select_files(siblings, nullptr).size();
    Status fetched = fetch_files(commit, siblings);
    if (!fetched.is_ok()) {
      // The Hub went away part-way: an older complete snapshot is still better than nothing.
      if (fetched.code() == StatusCode::kUnavailable) {
        if (auto dir = cache_.find_complete_snapshot(revision)) {
          spdlog::warn("hub: {}; using the cached snapshot {}", fetched.message(), dir->string());
          return *dir;
        }
      }
      return fetched;
    }

    std::error_code ec;
    fs::create_directories(cache_.snapshot_dir(commit), ec);
    if (ec) return internal_error("cannot create " + cache_.snapshot_dir(commit).string());
    // Written last: a ref always names a complete snapshot, so an interrupted update keeps the
    // previous commit usable offline.
    if (revision != commit) TURBINE_RETURN_IF_ERROR(cache_.write_ref(revision, commit));
    return cache_.snapshot_dir(commit);
  }

 private:
  Status fetch_files(const std::string& commit, const std::vector<std::string>& siblings) {
    std::vector<std::string> shards;
    const bool has_index =
        std::find(siblings.begin(), siblings.end(), kSafetensorsIndexFile) != siblings.end();
    if (has_index) {
      // The index decides which shards are needed, so it comes first.
      TURBINE_RETURN_IF_ERROR(fetch_file(commit, std::string(kSafetensorsIndexFile)));
      std::ifstream in(cache_.snapshot_dir(commit) / kSafetensorsIndexFile, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      TURBINE_ASSIGN_OR_RETURN(shards, shards_from_index(text.str()));
    }
    const std::vector<std::string> files = select_files(siblings, has_index ? &shards : nullptr);
    file_count_ = files.size();
    for (file_index_ = 0; file_index_ < files.size(); ++file_index_) {
      TURBINE_RETURN_IF_ERROR(fetch_file(commit, files[file_index_]));
    }
    return Status::ok();
  }

  static std::string trim_endpoint(std::string endpoint) {
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    return endpoint;
  }

  Status network_error(const Status& transport) const {
    return unavailable("cannot reach the Hugging Face Hub at " + endpoint_ + " (" +
                       transport.message() + "); set HF_HUB_OFFLINE=1 to use only the local cache");
  }

  Status http_error(const HttpResponse& r, std::string_view what) const {
    const std::string detail = describe_hub_error(r);
    const std::string suffix = detail.empty() ? "" : ": " + detail;
    const std::string* code = r.header("x-error-code");
    const std::string where = " (HTTP " + std::to_string(r.status) + " from " + endpoint_ + ")";
    if (r.status == 401 || (r.status == 404 && (code == nullptr || *code == "RepoNotFound"))) {
      std::string hint = options_.token ? "; check that HF_TOKEN has access to it"
                                        : "; if it is private or gated, set HF_TOKEN";
      const StatusCode sc = r.status == 401 ? StatusCode::kUnauthenticated : StatusCode::kNotFound;
      return {sc, "repository '" + repo_id_ + "' not found or gated" + where + hint + suffix};
    }
    if (r.status == 403) {
      return {StatusCode::kPermissionDenied,
              "access to '" + repo_id_ + "' is restricted" + where +
                  "; accept its terms on the Hub and set HF_TOKEN to a token with access" + suffix};
    }
    if (r.status == 404 && code != nullptr && *code == "RevisionNotFound") {
      return not_found(
          "revision '" + options_.revision + "' not found in '" + repo_id_ + "'" + where,
          "revision");
    }
    if (r.status == 404) {
      return not_found(std::string(what) + " not found in '" + repo_id_ + "'" + where + suffix);
    }
    if (r.status == 429) {
      return {StatusCode::kResourceExhausted, "rate limited by the Hub" + where + suffix};
    }
    if (r.status >= 500)
      return unavailable("the Hub failed on " + std::string(what) + where + suffix);
    return internal_error("unexpected answer for " + std::string(what) + where + suffix);
  }

  // GET /api/models/{repo}/revision/{revision} -> (commit sha, sibling file names).
  Result<std::pair<std::string, std::vector<std::string>>> fetch_revision_info() {
    const std::string url = endpoint_ + "/api/models/" + repo_id_ + "/revision/" +
                            url_quote(options_.revision, /*keep_slash=*/false);
    auto response = http_.get(url);
    if (!response) return network_error(response.status());
    if (response->status != 200) return http_error(*response, "revision info");

    boost::system::error_code ec;
    boost::json::value doc = boost::json::parse(response->body, ec);
    const auto* obj = ec ? nullptr : doc.if_object();
    if (obj == nullptr)
      return data_loss("the Hub's revision info for '" + repo_id_ + "' is not a JSON object");
    const auto* sha = obj->if_contains("sha");
    if (sha == nullptr || !sha->is_string() || !is_commit_hash(sha->as_string())) {
      return data_loss("the Hub's revision info for '" + repo_id_ + "' has no valid commit sha",
                       "sha");
    }
    std::vector<std::string> files;
    if (const auto* siblings = obj->if_contains("siblings"); siblings && siblings->is_array()) {
      for (const auto& s : siblings->as_array()) {
        const auto* so = s.if_object();
        const auto* name = so ? so->if_contains("rfilename") : nullptr;
        if (name != nullptr && name->is_string()) files.emplace_back(name->as_string());
      }
    }
    return std::make_pair(std::string(sha->as_string()), std::move(files));
  }

  std::string resolve_url(const std::string& commit, const std::string& filename) const {
    return endpoint_ + "/" + repo_id_ + "/resolve/" + commit + "/" + url_quote(filename, true);
  }

  // HEAD on the resolve URL: etag and size of the file (X-Linked-* describe an LFS file behind
  // a redirect to the CDN).
  Result<FileMeta> fetch_meta(const std::string& url, const std::string& filename) {
    auto response = http_.head(url);
    if (!response) return network_error(response.status());
    if (response->status >= 400) return http_error(*response, "file '" + filename + "'");
    const std::string* etag = response->header("x-linked-etag");
    if (etag == nullptr) etag = response->header("etag");
    auto normalized = etag ? normalize_etag(*etag) : std::nullopt;
    if (!normalized) {
      return data_loss("the Hub sent no usable ETag for '" + filename + "' of '" + repo_id_ + "'",
                       filename);
    }
    FileMeta meta{*normalized, parse_u64(response->header("x-linked-size"))};
    if (!meta.size) meta.size = parse_u64(response->header("content-length"));
    return meta;
  }

  void report(const std::string& filename, std::uint64_t done, std::uint64_t total) {
    if (!options_.on_progress) return;
    options_.on_progress(Progress{filename, done, total, file_index_, file_count_});
  }

  Status fetch_file(const std::string& commit, const std::string& filename) {
    if (cache_.has_snapshot_file(commit, filename)) return Status::ok();
    const std::string url = resolve_url(commit, filename);
    TURBINE_ASSIGN_OR_RETURN(FileMeta meta, fetch_meta(url, filename));

    std::error_code ec;
    const fs::path blob = cache_.blob_path(meta.etag);
    if (!fs::is_regular_file(blob, ec)) {
      // Another process may be writing the same blob; wait for it rather than race on the
      // .incomplete file.
      TURBINE_ASSIGN_OR_RETURN(auto lock, lock_file(cache_.lock_path(meta.etag)));
      if (!fs::is_regular_file(blob, ec))
        TURBINE_RETURN_IF_ERROR(download_blob(url, filename, meta));
    }
    return cache_.link_snapshot_file(commit, filename, meta.etag);
  }

  // Downloads into blobs/<etag>.incomplete, resuming from its current size, then renames it.
  Status download_blob(const std::string& url, const std::string& filename, const FileMeta& meta) {
    std::error_code ec;
    const fs::path partial = cache_.incomplete_path(meta.etag);
    fs::create_directories(partial.parent_path(), ec);
    if (ec)
      return internal_error("cannot create " + partial.parent_path().string() + ": " +
                            ec.message());
    UniqueFd fd(::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (fd.get() < 0) return internal_error("cannot open " + partial.string());
    const std::uint64_t total = meta.size.value_or(0);

    std::uint64_t last_reported = 0;
    const std::function<bool(std::uint64_t)> on_bytes = [&](std::uint64_t done) {
      if (done - std::min(done, last_reported) < kProgressStepBytes && done != total) return true;
      last_reported = done;
      try {
        report(filename, done, total);
      } catch (...) {
        return false;  // a throwing callback cancels rather than unwinding through libcurl
      }
      return true;
    };

    Status last_error;
    for (int attempt = 0; attempt <= std::max(0, options_.download_retries); ++attempt) {
      if (attempt > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(2000, 100 << attempt)));
      }
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) return internal_error("cannot stat " + partial.string());
      std::uint64_t offset = static_cast<std::uint64_t>(st.st_size);
      if (meta.size && offset > *meta.size) {
        if (::ftruncate(fd.get(), 0) != 0)
          return internal_error("cannot truncate " + partial.string());
        offset = 0;
      }
      if (meta.size && offset == *meta.size && offset > 0) break;  // finished before a crash

      last_reported = offset;
      try {
        report(filename, offset, total);
      } catch (...) {
        return Status(StatusCode::kCancelled, "download cancelled");
      }
      auto response = http_.download(url, fd.get(), offset, on_bytes);
      if (!response) {
        if (response.status().code() != StatusCode::kUnavailable) return response.status();
        last_error = network_error(response.status());
        continue;
      }
      if (response->status == 416) {
        // Our partial file is not a prefix the server recognises: start over.
        if (::ftruncate(fd.get(), 0) != 0)
          return internal_error("cannot truncate " + partial.string());
        last_error = data_loss("the server refused to resume '" + filename + "'", filename);
        continue;
      }
      if (response->status != 200 && response->status != 206) {
        Status error = http_error(*response, "file '" + filename + "'");
        if (error.code() != StatusCode::kUnavailable) return error;
        last_error = error;
        continue;
      }
      if (::fstat(fd.get(), &st) != 0) return internal_error("cannot stat " + partial.string());
      const auto got = static_cast<std::uint64_t>(st.st_size);
      if (!meta.size || got == *meta.size) {
        last_error = Status::ok();
        break;
      }
      last_error = data_loss("download of '" + filename + "' ended after " + std::to_string(got) +
                                 " of " + std::to_string(*meta.size) + " bytes",
                             filename);
    }
    if (!last_error.is_ok()) {
      struct stat st {};
      const auto have = ::fstat(fd.get(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
      return Status(last_error.code(),
                    last_error.message() + "; " + std::to_string(have) + " bytes of '" + filename +
                        "' are kept and the next attempt resumes from there",
                    last_error.field());
    }

    if (::fdatasync(fd.get()) != 0) return internal_error("cannot sync " + partial.string());
    fs::rename(partial, cache_.blob_path(meta.etag), ec);
    if (ec)
      return internal_error("cannot move " + partial.string() + " into place: " + ec.message());
    return Status::ok();
  }

  std::string repo_id_;
  const HubOptions& options_;
  std::string endpoint_;
  RepoCache cache_;
  HttpClient http_;
  std::size_t file_index_ = 0;
  std::size_t file_count_ = 0;
};

}  // namespace

Result<fs::path> snapshot_download(std::string_view repo_id, const HubOptions& options) {
  TURBINE_RETURN_IF_ERROR(validate_repo_id(repo_id));
  if (options.cache_dir.empty())
    return invalid_argument("hub cache directory is not set", "cache_dir");
  if (options.revision.empty() || options.revision.find("..") != std::string::npos ||
      options.revision.front() == '/') {
    return invalid_argument("invalid revision '" + options.revision + "'", "revision");
  }
  try {
    Downloader downloader(std::string(repo_id), options);
    return downloader.run();
  } catch (const std::exception& e) {
    // Allocation failures and filesystem exceptions end here instead of leaving the module.
    return internal_error(std::string("hub download failed: ") + e.what());
  }
}

}  // namespace turbine::hub

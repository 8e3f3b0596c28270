// Downloading model repositories from the Hugging Face Hub into the shared HF cache.
//
// The cache layout and HTTP protocol are the ones huggingface_hub (and therefore vLLM and
// transformers) use, so a model downloaded by Turbine is reused by Python tools and vice versa:
//
//   <cache_dir>/models--<org>--<name>/
//     refs/<revision>                 text file holding the commit hash the revision resolved to
//     blobs/<etag>                    file contents, named by git blob sha1 or LFS sha256
//     blobs/<etag>.incomplete         a download in progress; resumed with an HTTP Range request
//     snapshots/<commit>/<filename>   relative symlink -> ../../blobs/<etag>
//   <cache_dir>/.locks/models--<org>--<name>/<etag>.lock   flock()ed while a blob is written
//
// Threading: snapshot_download() is blocking and re-entrant; concurrent calls (threads or
// processes) for the same repo serialise per blob through the lock file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turbine::hub {

inline constexpr std::string_view kDefaultEndpoint = "https://huggingface.co";

// Reported while one file downloads. Bytes already on disk from an earlier interrupted attempt
// count as done, so a resumed download starts part-way through.
struct Progress {
  std::string filename;
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;  // 0 when the server did not say
  std::size_t file_index = 0;     // 0-based among the files that need downloading
  std::size_t file_count = 0;     // may shrink once model.safetensors.index.json is read
};

struct HubOptions {
  std::string endpoint = std::string(kDefaultEndpoint);  // no trailing '/'
  std::filesystem::path cache_dir;
  std::optional<std::string> token;
  bool offline = false;
  std::string revision = "main";
  // Called on the downloading thread; must not throw (an exception cancels the download).
  std::function<void(const Progress&)> on_progress;
  // Extra attempts per file after a dropped connection; each attempt resumes where the last
  // one stopped.
  int download_retries = 3;
  long connect_timeout_ms = 10'000;
  // A transfer slower than 1 byte/s for this long counts as a network failure.
  long stall_timeout_ms = 60'000;
};

// Reads HF_ENDPOINT, HF_HUB_CACHE (else HF_HOME/hub, else $XDG_CACHE_HOME or ~/.cache, then
// huggingface/hub), HF_TOKEN (else the token file `huggingface-cli login` writes) and
// HF_HUB_OFFLINE, the way huggingface_hub does.
HubOptions hub_options_from_env();

// True for "org/name" ids that are not an existing local path. Bare names such as "gpt2" are
// valid on the Hub but rejected here because they are indistinguishable from a relative folder.
bool looks_like_repo_id(std::string_view text);

// Makes sure the model files Turbine needs (configs, tokenizer files, safetensors weights) of
// `repo_id` at `options.revision` are in the cache and returns the snapshot folder
// `<cache>/models--org--name/snapshots/<commit>/`. Weight formats Turbine cannot load (.bin,
// .pt, .h5, .msgpack, onnx...) are never fetched.
//
// Offline (or when the endpoint cannot be reached) a complete cached snapshot of the revision is
// returned without any request. Errors: kUnauthenticated / kPermissionDenied / kNotFound for
// HTTP 401 / 403 / 404, kUnavailable when the endpoint cannot be reached and nothing is cached,
// kNotFound when offline and nothing is cached, kDataLoss when a download is truncated.
Result<std::filesystem::path> snapshot_download(std::string_view repo_id,
                                                const HubOptions& options);

}  // namespace turbine::hub

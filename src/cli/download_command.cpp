// `turbine download MODEL`: the Hub client (src/hub) on its own, for init containers, the
// recipes' model-download Jobs and air-gapped preparation. Into the Hugging Face cache by default
// (HF_HOME / HF_HUB_CACHE, reused by `turbine run --model org/name`), or into a plain folder with
// --local-dir (what `--model /data/<name>` then loads). Prints the folder on stdout.
#include "cli/download_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/progress_bar.h"
#include "hub/hub.h"

namespace turbine::cli {
namespace {
namespace fs = std::filesystem;

struct DownloadOptions {
  std::string model;
  std::string revision = "main";
  std::string cache_dir;
  std::string local_dir;
  std::string token;
  std::string endpoint;
  bool offline = false;
  bool no_progress = false;
};

// Puts every file of the snapshot at the same relative path under `dir`: a hard link to the
// blob (no second copy; the blobs live under dir/.cache), or a copy when the cache is on another
// filesystem. Files already there with the same content are kept.
Status materialize(const fs::path& snapshot, const fs::path& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(snapshot, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec)) continue;
    // Lexically: fs::relative would follow the entry's symlink into blobs/.
    const fs::path rel = it->path().lexically_relative(snapshot);
    if (rel.empty() || *rel.begin() == "..")
      return data_loss("snapshot entry outside the snapshot: " + it->path().string());
    const fs::path blob = fs::canonical(it->path(), ec);
    if (ec) return data_loss("broken snapshot entry " + it->path().string() + ": " + ec.message());
    const fs::path dst = dir / rel;
    fs::create_directories(dst.parent_path(), ec);
    if (fs::exists(dst, ec) && fs::equivalent(dst, blob, ec)) continue;
    const fs::path tmp = dst.string() + ".tmp-turbine";
    fs::remove(tmp, ec);
    ec.clear();
    fs::create_hard_link(blob, tmp, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(blob, tmp, fs::copy_options::overwrite_existing, ec);
      if (ec) return internal_error("cannot write " + tmp.string() + ": " + ec.message());
    }
    fs::rename(tmp, dst, ec);  // atomic: a reader never sees half a file
    if (ec) return internal_error("cannot write " + dst.string() + ": " + ec.message());
  }
  if (ec) return internal_error("cannot read " + snapshot.string() + ": " + ec.message());
  return Status::ok();
}

std::string hint(const Status& st, const hub::HubOptions& h) {
  switch (st.code()) {
    case StatusCode::kUnauthenticated:
    case StatusCode::kPermissionDenied:
      return h.token ? " (the token was sent: check it has access, and accept the model's terms "
                       "on its Hub page if it is gated)"
                     : " (no token: set HF_TOKEN or pass --token; gated models also need their "
                       "terms accepted on the Hub)";
    case StatusCode::kUnavailable:
      return " (cannot reach " + h.endpoint +
             "; behind a proxy set HTTPS_PROXY, air-gapped: download elsewhere and copy the "
             "folder, or set HF_ENDPOINT to a mirror)";
    default: return "";
  }
}

int run_download(const DownloadOptions& o) {
  hub::HubOptions h = hub::hub_options_from_env();
  h.revision = o.revision;
  if (!o.endpoint.empty()) {
    h.endpoint = o.endpoint;
    while (!h.endpoint.empty() && h.endpoint.back() == '/') h.endpoint.pop_back();
  }
  if (!o.token.empty()) h.token = o.token;
  if (o.offline) h.offline = true;
  if (!o.cache_dir.empty()) {
    h.cache_dir = o.cache_dir;
  } else if (!o.local_dir.empty()) {
    // Blobs (and the .incomplete files a resume continues) stay beside the files they become.
    h.cache_dir = fs::path(o.local_dir) / ".cache" / "huggingface" / "hub";
  }
  if (Status st = hub::looks_like_repo_id(o.model)
                      ? Status::ok()
                      : invalid_argument("'" + o.model + "' is not a Hub repo id (org/name)");
      !st.is_ok()) {
    std::fprintf(stderr, "turbine download: %s\n", st.message().c_str());
    return 2;
  }
  ProgressBar bar(isatty(STDERR_FILENO) != 0);
  if (!o.no_progress) h.on_progress = [&bar](const hub::Progress& p) { bar.update(p); };
  // Messages go to stderr: stdout is the folder alone, for `MODEL=$(turbine download ...)`.
  std::fprintf(stderr, "downloading %s@%s into %s\n", o.model.c_str(), o.revision.c_str(),
               (o.local_dir.empty() ? h.cache_dir.string() : o.local_dir).c_str());
  const auto t0 = std::chrono::steady_clock::now();
  auto snapshot = hub::snapshot_download(o.model, h);
  if (!snapshot) {
    std::fprintf(stderr, "turbine download: %s%s\n", snapshot.status().message().c_str(),
                 hint(snapshot.status(), h).c_str());
    return 1;
  }
  fs::path result = *snapshot;
  if (!o.local_dir.empty()) {
    if (Status st = materialize(*snapshot, o.local_dir); !st.is_ok()) {
      std::fprintf(stderr, "turbine download: %s\n", st.message().c_str());
      return 1;
    }
    result = o.local_dir;
  }
  std::fprintf(stderr, "%s@%s ready in %s (%.1f s)\n", o.model.c_str(), o.revision.c_str(),
               result.string().c_str(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  std::printf("%s\n", result.string().c_str());
  return 0;
}

}  // namespace

void add_download_command(CLI::App& app) {
  auto opts = std::make_shared<DownloadOptions>();
  DownloadOptions& d = *opts;
  auto* cmd = app.add_subcommand(
      "download", "Download a Hugging Face Hub model into the cache or a folder (resumable)");
  cmd->add_option("model", d.model, "Hub repo id, org/name")->required();
  cmd->add_option("--revision", d.revision, "Branch, tag or commit")->capture_default_str();
  cmd->add_option("--cache-dir", d.cache_dir,
                  "Hugging Face cache folder (default: HF_HUB_CACHE, else HF_HOME/hub)");
  cmd->add_option("--local-dir", d.local_dir,
                  "Put the files in this folder (what `--model DIR` loads); blobs and partial "
                  "downloads stay in DIR/.cache");
  cmd->add_option("--token", d.token, "Hub token (default: HF_TOKEN, else the saved login)");
  cmd->add_option("--endpoint", d.endpoint, "Hub URL (default: HF_ENDPOINT, else huggingface.co)");
  cmd->add_flag("--offline", d.offline,
                "Use only what is cached (as HF_HUB_OFFLINE=1); fails when it is incomplete");
  cmd->add_flag("--no-progress", d.no_progress, "No progress lines on stderr");
  cmd->callback([opts] { std::exit(run_download(*opts)); });
}

}  // namespace turbine::cli

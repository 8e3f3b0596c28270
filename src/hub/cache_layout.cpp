#include "hub/cache_layout.h"

#include <unistd.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <system_error>
#include <thread>

#include "hub/file_selection.h"

namespace turbine::hub {
namespace fs = std::filesystem;
namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

Status validate_repo_part(std::string_view part, std::string_view repo_id) {
  if (part.empty()) return invalid_argument("empty name in repo id '" + std::string(repo_id) + "'");
  for (char c : part) {
    if (!is_name_char(c)) {
      return invalid_argument("repo id '" + std::string(repo_id) +
                              "' may only contain letters, digits, '-', '_' and '.'");
    }
  }
  if (part.front() == '-' || part.front() == '.' || part.back() == '-' || part.back() == '.') {
    return invalid_argument("repo id '" + std::string(repo_id) +
                            "' parts cannot start or end with '-' or '.'");
  }
  return Status::ok();
}

// Unique per process and thread so that concurrent writers never share a temporary file.
std::string temp_suffix() {
  std::ostringstream s;
  s << ".tmp." << ::getpid() << "." << std::hash<std::thread::id>{}(std::this_thread::get_id());
  return s.str();
}

std::optional<std::string> read_small_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return s.str();
}

bool resolves_to_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);  // follows symlinks
}

}  // namespace

Status validate_repo_id(std::string_view repo_id) {
  if (repo_id.size() > 96) {
    return invalid_argument("repo id '" + std::string(repo_id) + "' is longer than 96 characters");
  }
  if (repo_id.find("--") != std::string_view::npos ||
      repo_id.find("..") != std::string_view::npos) {
    return invalid_argument("repo id '" + std::string(repo_id) + "' cannot contain '--' or '..'");
  }
  const auto slash = repo_id.find('/');
  if (slash == std::string_view::npos) return validate_repo_part(repo_id, repo_id);
  if (repo_id.find('/', slash + 1) != std::string_view::npos) {
    return invalid_argument("repo id '" + std::string(repo_id) + "' must look like 'org/name'");
  }
  TURBINE_RETURN_IF_ERROR(validate_repo_part(repo_id.substr(0, slash), repo_id));
  return validate_repo_part(repo_id.substr(slash + 1), repo_id);
}

std::string repo_folder_name(std::string_view repo_id) {
  std::string out = "models--";
  for (char c : repo_id) {
    if (c == '/') {
      out += "--";
    } else {
      out += c;
    }
  }
  return out;
}

bool is_commit_hash(std::string_view revision) {
  if (revision.size() != 40) return false;
  for (char c : revision) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::optional<std::string> normalize_etag(std::string_view etag) {
  if (etag.substr(0, 2) == "W/") etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  if (etag.empty() || etag.size() > 128 || etag.front() == '.') return std::nullopt;
  for (char c : etag) {
    if (!is_name_char(c)) return std::nullopt;
  }
  return std::string(etag);
}

RepoCache::RepoCache(const fs::path& cache_dir, std::string_view repo_id)
    : cache_dir_(cache_dir), folder_(repo_folder_name(repo_id)), root_(cache_dir / folder_) {}

fs::path RepoCache::blob_path(std::string_view etag) const {
  return root_ / "blobs" / etag;
}

fs::path RepoCache::incomplete_path(std::string_view etag) const {
  return root_ / "blobs" / (std::string(etag) + ".incomplete");
}

fs::path RepoCache::lock_path(std::string_view etag) const {
  // Same place huggingface_hub puts its filelock files, so both tools exclude each other.
  return cache_dir_ / ".locks" / folder_ / (std::string(etag) + ".lock");
}

fs::path RepoCache::snapshot_dir(std::string_view commit) const {
  return root_ / "snapshots" / commit;
}

fs::path RepoCache::ref_path(std::string_view revision) const {
  return root_ / "refs" / revision;
}

std::optional<std::string> RepoCache::read_ref(std::string_view revision) const {
  auto text = read_small_file(ref_path(revision));
  if (!text) return std::nullopt;
  while (!text->empty() && (text->back() == '\n' || text->back() == '\r' || text->back() == ' ')) {
    text->pop_back();
  }
  if (!is_commit_hash(*text)) return std::nullopt;
  return text;
}

Status RepoCache::write_ref(std::string_view revision, std::string_view commit) const {
  const fs::path path = ref_path(revision);
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    return internal_error("cannot create " + path.parent_path().string() + ": " + ec.message());
  const fs::path tmp = path.string() + temp_suffix();
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << commit;
    out.flush();
    if (!out) return internal_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return internal_error("cannot write " + path.string());
  }
  return Status::ok();
}

bool RepoCache::has_snapshot_file(std::string_view commit, std::string_view filename) const {
  return resolves_to_file(snapshot_dir(commit) / filename);
}

Status RepoCache::link_snapshot_file(std::string_view commit, std::string_view filename,
                                     std::string_view etag) const {
  const fs::path link = snapshot_dir(commit) / filename;
  std::error_code ec;
  fs::create_directories(link.parent_path(), ec);
  if (ec)
    return internal_error("cannot create " + link.parent_path().string() + ": " + ec.message());
  // ../../blobs/<etag> from snapshots/<commit>/, one more ../ per sub-folder of the file name.
  fs::path target;
  const fs::path subfolders = fs::path(filename).parent_path();
  for (auto it = subfolders.begin(); it != subfolders.end(); ++it) target /= "..";
  target = target / ".." / ".." / "blobs" / etag;
  const fs::path tmp = link.string() + temp_suffix();
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (ec) return internal_error("cannot create symlink " + tmp.string() + ": " + ec.message());
  fs::rename(tmp, link, ec);
  if (ec) {
    std::error_code ignore;
    fs::remove(tmp, ignore);
    return internal_error("cannot create symlink " + link.string() + ": " + ec.message());
  }
  return Status::ok();
}

std::optional<fs::path> RepoCache::find_complete_snapshot(std::string_view revision) const {
  std::optional<std::string> commit;
  if (is_commit_hash(revision)) {
    commit = std::string(revision);
  } else {
    commit = read_ref(revision);
  }
  if (!commit) return std::nullopt;
  const fs::path dir = snapshot_dir(*commit);
  if (!resolves_to_file(dir / kConfigFile)) return std::nullopt;

  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_symlink(ec) && !resolves_to_file(it->path())) return std::nullopt;
  }
  if (ec) return std::nullopt;

  if (resolves_to_file(dir / kSafetensorsIndexFile)) {
    auto text = read_small_file(dir / kSafetensorsIndexFile);
    if (!text) return std::nullopt;
    auto shards = shards_from_index(*text);
    if (!shards) return std::nullopt;
    for (const auto& shard : *shards) {
      if (!resolves_to_file(dir / shard)) return std::nullopt;
    }
  }
  return dir;
}

}  // namespace turbine::hub

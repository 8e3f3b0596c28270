// Paths inside the huggingface_hub cache for one repository, and the few file operations that
// must be atomic so that an interrupted or concurrent download never leaves a snapshot entry
// pointing at a partial blob. The layout is described in hub.h.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turbine::hub {

// Accepts "name" and "org/name" with the character rules of the Hub ([A-Za-z0-9_.-], no "--" or
// "..", no leading or trailing '-' or '.', at most 96 characters).
Status validate_repo_id(std::string_view repo_id);

// "org/name" -> "models--org--name".
std::string repo_folder_name(std::string_view repo_id);

// A full 40-character lowercase hex git commit id: such revisions never move, so a cached
// snapshot of one can be used without asking the Hub.
bool is_commit_hash(std::string_view revision);

// Etags become file names; anything other than [A-Za-z0-9_.-] (after stripping W/ and quotes)
// is refused so that a hostile endpoint cannot write outside blobs/.
std::optional<std::string> normalize_etag(std::string_view etag);

class RepoCache {
 public:
  RepoCache(const std::filesystem::path& cache_dir, std::string_view repo_id);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path blob_path(std::string_view etag) const;
  std::filesystem::path incomplete_path(std::string_view etag) const;
  std::filesystem::path lock_path(std::string_view etag) const;
  std::filesystem::path snapshot_dir(std::string_view commit) const;
  std::filesystem::path ref_path(std::string_view revision) const;

  std::optional<std::string> read_ref(std::string_view revision) const;
  // Atomic (write + rename) so readers never see a half-written commit id.
  Status write_ref(std::string_view revision, std::string_view commit) const;

  // True when snapshots/<commit>/<filename> exists and resolves to a blob.
  bool has_snapshot_file(std::string_view commit, std::string_view filename) const;
  // Points snapshots/<commit>/<filename> at ../../blobs/<etag> (relative, so the cache folder
  // can be moved), replacing any older link atomically.
  Status link_snapshot_file(std::string_view commit, std::string_view filename,
                            std::string_view etag) const;

  // The snapshot folder of `revision` (a commit hash or a ref) if it is cached and complete:
  // config.json is present (it is downloaded last), every entry resolves, and every shard named
  // by model.safetensors.index.json is there.
  std::optional<std::filesystem::path> find_complete_snapshot(std::string_view revision) const;

 private:
  std::filesystem::path cache_dir_;
  std::string folder_;
  std::filesystem::path root_;
};

}  // namespace turbine::hub

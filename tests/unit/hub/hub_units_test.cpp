// Tests of the pieces of src/hub that need no server: file selection, cache paths, env options.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "hub/cache_layout.h"
#include "hub/file_selection.h"
#include "hub/hub.h"

namespace turbine::hub {
namespace {
namespace fs = std::filesystem;

TEST(FileSelection, WantsConfigsTokenizersAndSafetensorsOnly) {
  for (const char* name :
       {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "tokenizer.model", "model.safetensors",
        "model-00001-of-00002.safetensors", "model.safetensors.index.json"}) {
    EXPECT_TRUE(is_wanted_file(name)) << name;
  }
  for (const char* name :
       {"pytorch_model.bin", "model.pt", "tf_model.h5", "flax_model.msgpack", "model.onnx",
        "onnx/model.onnx", "README.md", ".gitattributes", "original/consolidated.safetensors",
        "pytorch_model.bin.index.json", "model.gguf", ""}) {
    EXPECT_FALSE(is_wanted_file(name)) << name;
  }
}

TEST(FileSelection, IndexFirstConfigLastAndOnlyIndexedShards) {
  const std::vector<std::string> siblings = {"README.md",
                                             "config.json",
                                             "consolidated.safetensors",
                                             "model-00002-of-00002.safetensors",
                                             "model-00001-of-00002.safetensors",
                                             "model.safetensors.index.json",
                                             "pytorch_model.bin",
                                             "tokenizer.json"};
  const std::vector<std::string> shards = {"model-00001-of-00002.safetensors",
                                           "model-00002-of-00002.safetensors"};
  EXPECT_EQ(select_files(siblings, &shards),
            (std::vector<std::string>{
                "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors", "tokenizer.json", "config.json"}));
  // Without an index every top-level safetensors file is needed.
  EXPECT_EQ(select_files({"model.safetensors", "config.json", "extra.safetensors"}, nullptr),
            (std::vector<std::string>{"extra.safetensors", "model.safetensors", "config.json"}));
}

TEST(FileSelection, ParsesShardsFromIndex) {
  auto shards = shards_from_index(
      R"({"metadata":{"total_size":8},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors","c":"s1.safetensors"}})");
  ASSERT_TRUE(shards) << shards.status().to_string();
  EXPECT_EQ(*shards, (std::vector<std::string>{"s1.safetensors", "s2.safetensors"}));
  EXPECT_EQ(shards_from_index("{not json").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(shards_from_index(R"({"weight_map":[1]})").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(shards_from_index(R"({"weight_map":{"a":1}})").status().code(), StatusCode::kDataLoss);
}

TEST(CacheLayout, NamesAndValidation) {
  EXPECT_EQ(repo_folder_name("meta-llama/Llama-3.2-1B"), "models--meta-llama--Llama-3.2-1B");
  EXPECT_EQ(repo_folder_name("gpt2"), "models--gpt2");
  EXPECT_TRUE(validate_repo_id("Qwen/Qwen2.5-0.5B-Instruct").is_ok());
  EXPECT_TRUE(validate_repo_id("gpt2").is_ok());
  for (const char* bad :
       {"", "/abs", "a/b/c", "a--b/c", "a/../b", "-a/b", "a/b.", "a b/c", "org/"}) {
    EXPECT_EQ(validate_repo_id(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(is_commit_hash("0123456789abcdef0123456789abcdef01234567"));
  EXPECT_FALSE(is_commit_hash("main"));
  EXPECT_FALSE(is_commit_hash("0123456789ABCDEF0123456789abcdef01234567"));

  EXPECT_EQ(normalize_etag("\"abc123\""), "abc123");
  EXPECT_EQ(normalize_etag("W/\"abc-123\""), "abc-123");
  EXPECT_EQ(normalize_etag("\"../../etc\""), std::nullopt);
  EXPECT_EQ(normalize_etag("\"\""), std::nullopt);
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::path(::testing::TempDir()) / "hub_units_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(CacheLayout, CompleteSnapshotNeedsConfigAndAllIndexedShards) {
  TempDir tmp;
  RepoCache cache(tmp.path(), "org/model");
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  EXPECT_EQ(cache.find_complete_snapshot("main"), std::nullopt);

  auto put_blob = [&](const std::string& etag, const std::string& content) {
    fs::create_directories(cache.root() / "blobs");
    std::ofstream(cache.blob_path(etag), std::ios::binary) << content;
  };
  put_blob("idx", R"({"weight_map":{"w":"model-1.safetensors"}})");
  put_blob("cfg", "{}");
  ASSERT_TRUE(cache.link_snapshot_file(commit, "model.safetensors.index.json", "idx").is_ok());
  ASSERT_TRUE(cache.link_snapshot_file(commit, "config.json", "cfg").is_ok());
  EXPECT_EQ(fs::read_symlink(cache.snapshot_dir(commit) / "config.json"),
            fs::path("../../blobs/cfg"));
  ASSERT_TRUE(cache.write_ref("main", commit).is_ok());
  EXPECT_EQ(cache.read_ref("main"), commit);
  EXPECT_EQ(cache.find_complete_snapshot("main"), std::nullopt) << "shard missing";

  put_blob("w1", "weights");
  ASSERT_TRUE(cache.link_snapshot_file(commit, "model-1.safetensors", "w1").is_ok());
  EXPECT_EQ(cache.find_complete_snapshot("main"), cache.snapshot_dir(commit));
  EXPECT_EQ(cache.find_complete_snapshot(commit), cache.snapshot_dir(commit));

  fs::remove(cache.blob_path("w1"));
  EXPECT_EQ(cache.find_complete_snapshot("main"), std::nullopt) << "dangling symlink";
}

// Sets environment variables for one scope and restores the previous values.
class ScopedEnv {
 public:
  void set(const char* name, const char* value) {
    if (saved_.count(name) == 0) {
      const char* old = std::getenv(name);
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST(HubOptions, FromEnvironment) {
  TempDir tmp;
  ScopedEnv env;
  for (const char* name :
       {"HF_ENDPOINT", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME",
        "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE"}) {
    env.set(name, nullptr);
  }
  env.set("HOME", tmp.path().c_str());
  HubOptions defaults = hub_options_from_env();
  EXPECT_EQ(defaults.endpoint, "https://huggingface.co");
  EXPECT_EQ(defaults.cache_dir, tmp.path() / ".cache" / "huggingface" / "hub");
  EXPECT_EQ(defaults.token, std::nullopt);
  EXPECT_FALSE(defaults.offline);
  EXPECT_EQ(defaults.revision, "main");

  // The token file written by `huggingface-cli login`, under HF_HOME.
  env.set("HF_HOME", (tmp.path() / "hf").c_str());
  fs::create_directories(tmp.path() / "hf");
  std::ofstream(tmp.path() / "hf" / "token") << "hf_file_token\n";
  HubOptions from_home = hub_options_from_env();
  EXPECT_EQ(from_home.cache_dir, tmp.path() / "hf" / "hub");
  EXPECT_EQ(from_home.token, "hf_file_token");

  env.set("HF_ENDPOINT", "http://mirror.example:8080/");
  env.set("HF_HUB_CACHE", "/data/hf");
  env.set("HF_TOKEN", "hf_env_token");
  env.set("HF_HUB_OFFLINE", "1");
  HubOptions set = hub_options_from_env();
  EXPECT_EQ(set.endpoint, "http://mirror.example:8080");
  EXPECT_EQ(set.cache_dir, fs::path("/data/hf"));
  EXPECT_EQ(set.token, "hf_env_token");
  EXPECT_TRUE(set.offline);
  env.set("HF_HUB_OFFLINE", "0");
  EXPECT_FALSE(hub_options_from_env().offline);
}

TEST(HubOptions, LooksLikeRepoId) {
  EXPECT_TRUE(looks_like_repo_id("Qwen/Qwen2.5-0.5B-Instruct"));
  EXPECT_TRUE(looks_like_repo_id("meta-llama/Llama-3.2-1B"));
  EXPECT_FALSE(looks_like_repo_id("gpt2"));
  EXPECT_FALSE(looks_like_repo_id("/models/llama"));
  EXPECT_FALSE(looks_like_repo_id("./models/llama"));
  EXPECT_FALSE(looks_like_repo_id("models/llama/7b"));
  EXPECT_FALSE(looks_like_repo_id("model.gguf"));

  // A relative folder that happens to look like "org/name" is a local path.
  TempDir tmp;
  fs::create_directories(tmp.path() / "org" / "name");
  const fs::path old_cwd = fs::current_path();
  fs::current_path(tmp.path());
  EXPECT_FALSE(looks_like_repo_id("org/name"));
  EXPECT_TRUE(looks_like_repo_id("org/other"));
  fs::current_path(old_cwd);
}

}  // namespace
}  // namespace turbine::hub

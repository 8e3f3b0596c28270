#include "semantic/reloader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "semantic/stage.h"

namespace turbine::semantic {
namespace {

std::string config_for(const std::string& model) {
  return "virtual_models: [MoM]\nmodels: [{name: " + model + "}]\ndefault_decision: {models: [" +
         model + "]}\n";
}

struct TempFile {
  std::string path;
  TempFile() {
    path = (std::filesystem::temp_directory_path() /
            ("semantic_reloader_" + std::to_string(::getpid()) + "_" +
             std::to_string(reinterpret_cast<uintptr_t>(this)) + ".yaml"))
               .string();
  }
  ~TempFile() { std::remove(path.c_str()); }
  // Writes through a rename, as editors and ConfigMap updates do (a new inode every time, so the
  // change is seen even within one mtime tick).
  void write(const std::string& text) const {
    std::string tmp = path + ".tmp";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, path);
  }
};

std::string routed(SemanticStage& s) {
  SemanticRequest r;
  r.model = "MoM";
  r.messages = {{"user", "hi"}};
  return s.process(r).model;
}

std::unique_ptr<SemanticStage> make_stage(const TempFile& f) {
  auto cfg = load_semantic_config(f.path);
  EXPECT_TRUE(cfg.has_value());
  auto s = SemanticStage::create(*cfg, Models{});
  EXPECT_TRUE(s.has_value());
  return std::move(s).value();
}

TEST(ConfigReloader, FileChangeReloads) {
  TempFile f;
  f.write(config_for("one"));
  auto stage = make_stage(f);
  ConfigReloader r(*stage, f.path);
  r.poll_once();  // unchanged: nothing happens
  EXPECT_EQ(r.reloads_ok() + r.reloads_failed(), 0u);
  f.write(config_for("two"));
  r.poll_once();
  EXPECT_EQ(r.reloads_ok(), 1u);
  EXPECT_EQ(routed(*stage), "two");
}

TEST(ConfigReloader, BadReloadKeepsTheOldConfigAndIsCounted) {
  TempFile f;
  f.write(config_for("one"));
  auto stage = make_stage(f);
  ConfigReloader r(*stage, f.path);
  f.write("models: [{name: x}]\nsurprise: true\n");  // unknown key
  r.poll_once();
  EXPECT_EQ(r.reloads_failed(), 1u);
  EXPECT_EQ(routed(*stage), "one");
  EXPECT_EQ(stage->metrics().reloads_failed, 1u);
  r.poll_once();  // not retried until the file changes again
  EXPECT_EQ(r.reloads_failed(), 1u);
  f.write("pii: {action: [broken\n");  // YAML syntax error
  r.poll_once();
  EXPECT_EQ(r.reloads_failed(), 2u);
  EXPECT_EQ(routed(*stage), "one");
  f.write(config_for("three"));
  r.poll_once();
  EXPECT_EQ(routed(*stage), "three");
  EXPECT_EQ(stage->metrics().reloads_ok, 1u);
}

TEST(ConfigReloader, SighupFlagReloadsTheSameFile) {
  TempFile f;
  f.write(config_for("one"));
  auto stage = make_stage(f);
  ConfigReloader r(*stage, f.path);
  r.request_reload();
  r.poll_once();
  EXPECT_EQ(r.reloads_ok(), 1u);
  EXPECT_EQ(routed(*stage), "one");
}

TEST(ConfigReloader, BackgroundThreadPicksUpChanges) {
  TempFile f;
  f.write(config_for("one"));
  auto stage = make_stage(f);
  ConfigReloader r(*stage, f.path, /*poll_ms=*/10);
  r.start();
  f.write(config_for("two"));
  // Wait for the outcome, not for a duration: the poll thread runs every 10 ms.
  for (int i = 0; i < 1000 && routed(*stage) != "two"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(routed(*stage), "two");
  r.stop();
}

}  // namespace
}  // namespace turbine::semantic

// Model checks: the files are there, complete and readable; the config loads; the tokenizer and
// the chat template work; weights + one full-length sequence's KV cache fit the memory budget.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "doctor/doctor.h"
#include "doctor/probes.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace turbine::doctor {
namespace {
namespace fs = std::filesystem;

CheckResult skipped(std::string id, std::string title, std::string why) {
  return CheckResult{std::move(id), std::move(title), CheckStatus::kSkip, std::move(why), {}};
}

CheckResult failed(std::string id, std::string title, std::string why) {
  return CheckResult{std::move(id), std::move(title), CheckStatus::kFail, std::move(why), {}};
}

// Reads the first `n` bytes; false when the file cannot be opened or is shorter.
bool read_prefix(const fs::path& path, char* out, size_t n) {
  std::ifstream in(path, std::ios::binary);
  return in && in.read(out, static_cast<std::streamsize>(n)) &&
         in.gcount() == static_cast<std::streamsize>(n);
}

// A safetensors file is complete when it holds its header and every tensor's data_offsets.
Status check_safetensors(const fs::path& path, int64_t* bytes) {
  std::error_code ec;
  const auto size = static_cast<int64_t>(fs::file_size(path, ec));
  if (ec) return not_found(path.string() + ": " + ec.message());
  *bytes = size;
  uint64_t header_len = 0;
  if (!read_prefix(path, reinterpret_cast<char*>(&header_len), 8))
    return Status(StatusCode::kDataLoss, path.string() + ": unreadable or shorter than 8 bytes");
  if (header_len > static_cast<uint64_t>(size) - 8 || header_len > (uint64_t{100} << 20))
    return Status(StatusCode::kDataLoss, fmt::format("{}: header of {} bytes in a file of {}",
                                                     path.string(), header_len, size));
  std::string header(header_len, '\0');
  std::ifstream in(path, std::ios::binary);
  in.seekg(8);
  if (!in.read(header.data(), static_cast<std::streamsize>(header_len)))
    return Status(StatusCode::kDataLoss, path.string() + ": cannot read the header");
  auto doc = nlohmann::json::parse(header, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return Status(StatusCode::kDataLoss, path.string() + ": the header is not JSON");
  uint64_t end = 0;
  for (const auto& [name, t] : doc.items()) {
    if (name == "__metadata__" || !t.is_object()) continue;
    auto off = t.find("data_offsets");
    if (off == t.end() || !off->is_array() || off->size() != 2 || !(*off)[1].is_number_unsigned())
      continue;
    end = std::max(end, (*off)[1].get<uint64_t>());
  }
  const uint64_t data = static_cast<uint64_t>(size) - 8 - header_len;
  if (end > data)
    return Status(StatusCode::kDataLoss,
                  fmt::format("{}: truncated ({} bytes of tensor data, the header says {})",
                              path.filename().string(), data, end));
  return Status::ok();
}

// model.files for a Hugging Face folder.
CheckResult hf_folder_files(const fs::path& dir) {
  CheckResult c{"model.files", "Model files", CheckStatus::kPass, "", {}};
  std::vector<std::string> problems;
  std::error_code ec;
  for (const char* f : {"config.json", "tokenizer.json"}) {
    if (!fs::is_regular_file(dir / f, ec)) {
      problems.push_back(std::string(f) + " is missing");
    } else if (char b; !read_prefix(dir / f, &b, 1)) {
      problems.push_back(std::string(f) + " is not readable");
    }
  }
  c.details["tokenizer_config"] = fs::exists(dir / "tokenizer_config.json", ec);
  std::vector<std::string> shards;
  if (fs::exists(dir / "model.safetensors.index.json", ec)) {
    std::ifstream in(dir / "model.safetensors.index.json");
    auto idx = nlohmann::json::parse(in, nullptr, false);
    if (idx.is_discarded() || !idx.contains("weight_map") || !idx["weight_map"].is_object()) {
      problems.push_back("model.safetensors.index.json has no weight_map");
    } else {
      for (const auto& [tensor, file] : idx["weight_map"].items()) {
        if (file.is_string()) shards.push_back(file.get<std::string>());
      }
      std::sort(shards.begin(), shards.end());
      shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
    }
  } else {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".safetensors") shards.push_back(e.path().filename().string());
    }
    std::sort(shards.begin(), shards.end());
    if (shards.empty()) problems.push_back("no *.safetensors weights");
  }
  int64_t total = 0;
  for (const std::string& s : shards) {
    int64_t bytes = 0;
    if (Status st = check_safetensors(dir / s, &bytes); !st.is_ok()) {
      problems.push_back(st.message());
    }
    total += bytes;
  }
  c.details["weight_files"] = static_cast<int64_t>(shards.size());
  c.details["weight_bytes_on_disk"] = total;
  if (!problems.empty()) {
    c.status = CheckStatus::kFail;
    std::string all;
    for (const std::string& p : problems) all += (all.empty() ? "" : "; ") + p;
    c.summary = all;
    return c;
  }
  c.summary = fmt::format("config.json, tokenizer.json and {} safetensors file(s), {}, complete",
                          shards.size(), format_bytes(total));
  return c;
}

CheckResult single_file(const fs::path& file) {
  CheckResult c{"model.files", "Model files", CheckStatus::kPass, "", {}};
  std::error_code ec;
  const auto size = static_cast<int64_t>(fs::file_size(file, ec));
  char magic[4] = {};
  if (ec || !read_prefix(file, magic, 4))
    return failed(c.id, c.title, file.string() + ": unreadable");
  c.details["weight_bytes_on_disk"] = size;
  const bool gguf = std::memcmp(magic, "GGUF", 4) == 0;
  c.details["format"] = gguf ? "gguf" : "llama2c";
  if (!gguf && file.extension() == ".bin") {
    // run.c checkpoints carry no vocabulary: tokenizer.bin (or one tok*.bin) must sit beside it.
    bool found = fs::exists(file.parent_path() / "tokenizer.bin", ec);
    for (const auto& e : fs::directory_iterator(file.parent_path(), ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("tok", 0) == 0 && e.path().extension() == ".bin") found = true;
    }
    if (!found)
      return failed(c.id, c.title,
                    "tokenizer.bin (or tok*.bin) is missing beside " + file.filename().string());
  }
  c.summary = fmt::format("{} ({}), readable", file.filename().string(), format_bytes(size));
  return c;
}

int64_t dtype_bytes(const std::string& dtype) {
  return dtype == "f32" ? 4 : 2;
}

}  // namespace

std::vector<CheckResult> check_model(const DoctorOptions& o) {
  std::vector<CheckResult> out;
  const char* ids[] = {"model.files", "model.config", "model.tokenizer", "model.chat_template",
                       "model.fit"};
  const char* titles[] = {"Model files", "Model config", "Tokenizer", "Chat template",
                          "Memory fit"};
  auto skip_rest = [&](const std::string& why) {
    for (size_t i = out.size(); i < 5; ++i) out.push_back(skipped(ids[i], titles[i], why));
    return out;
  };
  if (o.model.empty()) return skip_rest("no --model given");
  const fs::path path = o.model;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    out.push_back(failed(ids[0], titles[0], o.model + ": no such file or directory"));
    return skip_rest("the model files are missing");
  }
  out.push_back(fs::is_directory(path, ec) ? hf_folder_files(path) : single_file(path));

  auto loaded = model::load_model(path);
  if (!loaded) {
    out.push_back(failed(ids[1], titles[1], "cannot load: " + loaded.status().message()));
    return skip_rest("the model does not load");
  }
  std::shared_ptr<const model::Model> m = std::move(*loaded);
  const model::ModelConfig& cfg = m->config();
  {
    CheckResult c{ids[1], titles[1], CheckStatus::kPass, "", {}};
    c.details["architecture"] = cfg.arch_name;
    c.details["layers"] = cfg.n_layers;
    c.details["hidden_size"] = cfg.dim;
    c.details["heads"] = cfg.n_heads;
    c.details["kv_heads"] = cfg.n_kv_heads;
    c.details["head_dim"] = cfg.head_dim;
    c.details["vocab"] = cfg.n_vocab;
    c.details["context_length"] = cfg.max_context;
    c.summary = fmt::format("{}: {} layers, hidden {}, {} heads ({} kv), vocab {}, context {}",
                            cfg.arch_name, cfg.n_layers, cfg.dim, cfg.n_heads, cfg.n_kv_heads,
                            cfg.n_vocab, cfg.max_context);
    if (o.max_model_len > cfg.max_context && cfg.max_context > 0) {
      c.status = CheckStatus::kWarn;
      c.summary += fmt::format(" (--max-model-len {} exceeds it)", o.max_model_len);
    }
    out.push_back(std::move(c));
  }

  std::unique_ptr<tokenizer::Tokenizer> tok;
  {
    CheckResult c{ids[2], titles[2], CheckStatus::kPass, "", {}};
    auto made = tokenizer::make_tokenizer(m->vocab());
    if (!made) {
      c.status = CheckStatus::kFail;
      c.summary = "cannot build the tokenizer: " + made.status().message();
    } else {
      tok = std::move(*made);
      const std::string sample = "Hello, world! 123";
      const auto ids_ = tok->encode(sample, false);
      const std::string back = tok->decode(ids_, true);
      c.details["vocab_size"] = tok->vocab_size();
      c.details["bos_id"] = tok->bos_id();
      c.details["eos_id"] = tok->eos_id();
      c.details["sample_tokens"] = static_cast<int64_t>(ids_.size());
      c.details["round_trip"] = back == sample;
      c.summary = fmt::format("{} tokens, BOS {}, EOS {}; \"{}\" -> {} tokens", tok->vocab_size(),
                              tok->bos_id(), tok->eos_id(), sample, ids_.size());
      if (ids_.empty()) {
        c.status = CheckStatus::kFail;
        c.summary = "the tokenizer encodes a sample sentence to nothing";
      } else if (back != sample) {
        // Small vocabularies (stories260K) legitimately lose characters; worth a look, not fatal.
        c.status = CheckStatus::kWarn;
        c.summary += ", which decode to \"" + back + "\"";
      }
    }
    out.push_back(std::move(c));
  }

  {
    CheckResult c{ids[3], titles[3], CheckStatus::kPass, "", {}};
    const std::string& src = m->vocab().chat_template;
    c.details["has_template"] = !src.empty();
    if (src.empty()) {
      c.status = CheckStatus::kInfo;
      c.summary = "no chat template: chat requests use the plain \"role: content\" fallback";
    } else if (auto t = chat::ChatTemplate::parse(src); !t) {
      c.status = CheckStatus::kFail;
      c.summary = "the chat template does not parse: " + t.status().message();
    } else {
      nlohmann::ordered_json msgs =
          nlohmann::ordered_json::array({{{"role", "system"}, {"content", "You are helpful."}},
                                         {{"role", "user"}, {"content", "Hi"}}});
      std::string bos = tok && tok->bos_id() >= 0 ? tok->piece(tok->bos_id()) : "";
      std::string eos = tok && tok->eos_id() >= 0 ? tok->piece(tok->eos_id()) : "";
      auto r = chat::apply_chat_template(*t, msgs, nullptr, true, bos, eos, nullptr);
      if (!r) {
        c.status = CheckStatus::kFail;
        c.summary =
            "the chat template fails on a system + user conversation: " + r.status().message();
      } else {
        c.details["rendered_bytes"] = static_cast<int64_t>(r->size());
        c.summary =
            fmt::format("parses and renders a system + user conversation ({} bytes)", r->size());
      }
    }
    out.push_back(std::move(c));
  }

  // model.fit: weights at the GPU dtype + one full-length sequence of BF16 KV cache, against
  // --gpu-memory-utilization x GPU memory x tensor-parallel-size (the CUDA backend's budget:
  // utilization x total, less what is already used, weights included).
  {
    CheckResult c{ids[4], titles[4], CheckStatus::kPass, "", {}};
    MemoryEstimate e;
    int64_t params = 0;
    auto count = [&params](const model::TensorView& t) {
      if (t.present()) params += t.rows * t.cols;
    };
    const model::Weights& w = m->weights();
    count(w.tok_embeddings);
    count(w.output_norm);
    if (w.output.data != w.tok_embeddings.data) count(w.output);
    for (const model::LayerWeights& l : w.layers) {
      for (const model::TensorView* t :
           {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.q_norm, &l.k_norm,
            &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
        count(*t);
    }
    e.weight_bytes = params * dtype_bytes(o.dtype);
    e.max_model_len = o.max_model_len > 0 ? o.max_model_len : cfg.max_context;
    e.kv_bytes_per_token = int64_t{2} * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * 2;
    e.kv_bytes = e.kv_bytes_per_token * e.max_model_len;
    const int64_t need = e.weight_bytes + e.kv_bytes;
    int64_t per_gpu = 0;
    std::string source;
    if (o.gpu_memory_bytes) {
      per_gpu = *o.gpu_memory_bytes;
      source = "--gpu-memory";
    } else {
      const GpuProbe g = probe_gpus();
      if (!g.devices.empty()) {
        per_gpu = g.devices[0].total_bytes;
        source = "GPU 0 (" + g.devices[0].name + ")";
      }
    }
    int64_t budget = 0;
    if (per_gpu > 0) {
      budget = static_cast<int64_t>(o.gpu_memory_utilization * static_cast<double>(per_gpu)) *
               std::max(1, o.tensor_parallel_size);
    } else if (auto mi = read_meminfo("/proc/meminfo")) {
      budget = mi->available_bytes;  // the CPU backend: host memory
      source = "host memory available (no GPU)";
    }
    c.details["parameters"] = params;
    c.details["weight_bytes"] = e.weight_bytes;
    c.details["kv_bytes_per_token"] = e.kv_bytes_per_token;
    c.details["max_model_len"] = e.max_model_len;
    c.details["kv_bytes"] = e.kv_bytes;
    c.details["required_bytes"] = need;
    c.details["budget_bytes"] = budget;
    c.details["budget_source"] = source;
    c.details["gpu_memory_utilization"] = o.gpu_memory_utilization;
    c.details["tensor_parallel_size"] = o.tensor_parallel_size;
    const int64_t spare = budget - e.weight_bytes;
    const int64_t full_seqs = e.kv_bytes > 0 && spare > 0 ? spare / e.kv_bytes : 0;
    c.details["full_length_sequences"] = full_seqs;
    c.summary = fmt::format(
        "weights {} ({} params, {}) + KV {} ({} tokens x {}/token) = {} {} budget {} ({})",
        format_bytes(e.weight_bytes), params, o.dtype, format_bytes(e.kv_bytes), e.max_model_len,
        format_bytes(e.kv_bytes_per_token), format_bytes(need), need <= budget ? "<=" : ">",
        format_bytes(budget), source);
    if (budget <= 0) {
      c.status = CheckStatus::kWarn;
      c.summary = "no memory budget known: pass --gpu-memory BYTES";
    } else if (need > budget) {
      c.status = CheckStatus::kFail;
      c.summary += "; lower --max-model-len, raise --gpu-memory-utilization or use more GPUs";
    } else {
      c.summary += fmt::format("; room for {} full-length sequence(s)", full_seqs);
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace turbine::doctor

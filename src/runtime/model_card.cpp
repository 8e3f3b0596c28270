#include "runtime/model_card.h"

#include <boost/json.hpp>

namespace turbine::runtime {
namespace {
namespace json = boost::json;
}

std::string to_json(const ModelCard& c) {
  json::object o;
  o["version"] = c.version;
  o["model_name"] = c.model_name;
  o["served_name"] = c.served_name;
  o["context_length"] = c.context_length;
  o["kv_cache_block_size"] = c.block_size;
  o["total_kv_blocks"] = c.kv_total_blocks;
  o["max_num_seqs"] = c.max_num_seqs;
  o["tokenizer_location"] = c.tokenizer_location;
  o["address"] = c.address;
  if (!c.kv_layout.empty()) o["kv_layout"] = c.kv_layout;
  if (c.is_encoder()) {
    o["task"] = c.task;
    o["embedding_dim"] = c.embedding_dim;
    o["max_inputs"] = c.max_inputs;
    json::array labels;
    for (const std::string& l : c.labels) labels.emplace_back(l);
    o["labels"] = std::move(labels);
  }
  o["tensor_parallel_size"] = c.tensor_parallel_size;
  return json::serialize(o);
}

std::string kv_layout_string(const engine::KvLayout& l) {
  if (!l.exportable()) return {};
  return l.dtype + "/" + std::to_string(l.block_size) + "/" + std::to_string(l.n_layers) + "/" +
         std::to_string(l.n_kv_heads) + "/" + std::to_string(l.head_dim) + "/" +
         std::to_string(l.bytes_per_block);
}

Result<ModelCard> model_card_from_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return invalid_argument("model card is not a JSON object");
  const json::object& o = v.get_object();
  ModelCard c;
  auto int_field = [&](const char* k, auto& out) {
    const json::value* x = o.if_contains(k);
    if (!x) return false;
    if (x->is_int64()) {
      out = static_cast<std::remove_reference_t<decltype(out)>>(x->get_int64());
    } else if (x->is_uint64()) {
      out = static_cast<std::remove_reference_t<decltype(out)>>(x->get_uint64());
    } else {
      return false;
    }
    return true;
  };
  auto str_field = [&](const char* k, std::string& out) {
    const json::value* x = o.if_contains(k);
    if (!x || !x->is_string()) return false;
    out = std::string(x->get_string());
    return true;
  };
  if (!int_field("version", c.version)) return invalid_argument("model card has no version");
  if (c.version > ModelCard::kVersion) {
    return invalid_argument("model card version " + std::to_string(c.version) +
                            " is newer than this frontend understands");
  }
  if (!str_field("model_name", c.model_name) || !str_field("served_name", c.served_name) ||
      !int_field("context_length", c.context_length) ||
      !int_field("kv_cache_block_size", c.block_size) ||
      !int_field("total_kv_blocks", c.kv_total_blocks) ||
      !str_field("tokenizer_location", c.tokenizer_location) || !str_field("address", c.address)) {
    return invalid_argument("model card misses fields");
  }
  int_field("max_num_seqs", c.max_num_seqs);
  str_field("kv_layout", c.kv_layout);
  if (str_field("task", c.task)) {
    int_field("embedding_dim", c.embedding_dim);
    int_field("max_inputs", c.max_inputs);
    if (const json::value* l = o.if_contains("labels"); l && l->is_array()) {
      for (const json::value& x : l->get_array()) {
        if (!x.is_string()) return invalid_argument("model card labels must be strings");
        c.labels.emplace_back(x.get_string());
      }
    }
    if (c.task.empty() || c.embedding_dim < 0 || c.max_inputs < 0)
      return invalid_argument("model card has a bad encoder task");
  }
  if (c.served_name.empty() || c.context_length <= 0 || c.block_size <= 0 ||
      c.tensor_parallel_size <= 0) {
    return invalid_argument("model card has empty or non-positive fields");
  }
  return c;
}

}  // namespace turbine::runtime

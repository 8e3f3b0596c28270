#include "engine/kv_write_tracker.h"

#include <algorithm>
#include <string>

namespace turbine::engine {

KvWriteTracker::KvWriteTracker(int n_blocks, int block_size, int max_context, int32_t n_vocab)
    : n_blocks_(n_blocks),
      block_size_(block_size),
      max_context_(max_context),
      n_vocab_(n_vocab),
      block_len_(static_cast<size_t>(n_blocks), 0),
      write_mark_(static_cast<size_t>(n_blocks), 0) {}

Status KvWriteTracker::validate(std::span<const SeqChunk> chunks) {
  const int bs = block_size_;
  std::vector<int> marked;
  auto check_chunk = [&](size_t c) -> Status {
    const SeqChunk& ch = chunks[c];
    const std::string where = "chunk " + std::to_string(c) + ": ";
    if (ch.tokens.empty()) return invalid_argument(where + "no tokens", "tokens");
    if (ch.pos < 0) return invalid_argument(where + "negative position", "pos");
    const int64_t end = static_cast<int64_t>(ch.pos) + static_cast<int64_t>(ch.tokens.size());
    if (end > max_context_) {
      return invalid_argument(where + "positions up to " + std::to_string(end) +
                                  " exceed max context " + std::to_string(max_context_),
                              "pos");
    }
    if (static_cast<int64_t>(ch.block_table.size()) * bs < end) {
      return invalid_argument(where + "block table of " + std::to_string(ch.block_table.size()) +
                                  " blocks cannot hold " + std::to_string(end) + " positions",
                              "block_table");
    }
    const size_t used_blocks = static_cast<size_t>((end + bs - 1) / bs);
    for (size_t j = 0; j < used_blocks; ++j) {
      const int b = ch.block_table[j];
      if (b < 0 || b >= n_blocks_) {
        return invalid_argument(where + "block " + std::to_string(b) + " out of range [0, " +
                                    std::to_string(n_blocks_) + ")",
                                "block_table");
      }
    }
    // Every position before pos must have been written.
    const size_t first_written = static_cast<size_t>(ch.pos / bs);
    bool gap = false;
    for (size_t j = 0; j < first_written; ++j)
      gap = gap || block_len_[static_cast<size_t>(ch.block_table[j])] < bs;
    if (ch.pos % bs != 0)
      gap = gap || block_len_[static_cast<size_t>(ch.block_table[first_written])] < ch.pos % bs;
    if (gap) {
      return invalid_argument(where + "position " + std::to_string(ch.pos) +
                                  " but earlier positions are not in the cache",
                              "pos");
    }
    for (size_t j = first_written; j < used_blocks; ++j) {
      const auto b = static_cast<size_t>(ch.block_table[j]);
      if (write_mark_[b] != 0) {
        return invalid_argument(
            where + "block " + std::to_string(b) + " is written by two chunks of one step",
            "block_table");
      }
      write_mark_[b] = 1;
      marked.push_back(static_cast<int>(b));
    }
    for (int32_t t : ch.tokens) {
      if (t < 0 || t >= n_vocab_) {
        return invalid_argument(where + "token id " + std::to_string(t) +
                                    " out of vocabulary [0, " + std::to_string(n_vocab_) + ")",
                                "tokens");
      }
    }
    return Status::ok();
  };
  Status st = Status::ok();
  for (size_t c = 0; c < chunks.size() && st.is_ok(); ++c) st = check_chunk(c);
  for (int b : marked) write_mark_[static_cast<size_t>(b)] = 0;
  return st;
}

void KvWriteTracker::commit(std::span<const SeqChunk> chunks) {
  for (const SeqChunk& ch : chunks) {
    const int end = ch.pos + static_cast<int>(ch.tokens.size());
    for (int j = ch.pos / block_size_; j * block_size_ < end; ++j) {
      block_len_[static_cast<size_t>(ch.block_table[static_cast<size_t>(j)])] =
          std::min(block_size_, end - j * block_size_);
    }
  }
}

Status KvWriteTracker::record_import(std::span<const int32_t> blocks, int n_positions) {
  const int64_t cap = static_cast<int64_t>(blocks.size()) * block_size_;
  if (n_positions < 0 || n_positions > cap || cap - n_positions >= block_size_) {
    return invalid_argument(std::to_string(blocks.size()) + " blocks cannot hold exactly " +
                                std::to_string(n_positions) + " imported positions",
                            "blocks");
  }
  for (int32_t b : blocks) {
    if (b < 0 || b >= n_blocks_)
      return invalid_argument("block " + std::to_string(b) + " out of range", "blocks");
  }
  for (size_t j = 0; j < blocks.size(); ++j) {
    block_len_[static_cast<size_t>(blocks[j])] =
        std::min(block_size_, n_positions - static_cast<int>(j) * block_size_);
  }
  return Status::ok();
}

}  // namespace turbine::engine

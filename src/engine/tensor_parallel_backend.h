// A Backend over the ranks of a tensor-parallel group (issue 22), driven in lock-step.
//
// Each rank is a Backend that computes its shard (tp/shard.h) and talks to the other ranks through
// its tp::Communicator; rank 0 answers (logits, sampled tokens), the others return nothing. The
// TensorParallelBackend forwards every call to all ranks at once, each on its own rank thread,
// and returns when all are done: one scheduler (the engine) drives every rank, the block ids are
// shared (every rank holds its KV heads' share of every block), so kv::BlockPool and the
// scheduler do not know about ranks.
//
// KV export/import (disaggregation) uses the layout of one whole model, independent of the TP
// size: read_kv_blocks assembles each block's KV heads from the ranks that hold them, and
// write_kv_blocks hands each rank its heads (every holder of a replicated head). A prefill worker
// and a decode worker of different TP sizes therefore exchange blocks correctly.
//
// Threads: the engine thread calls the Backend methods; rank thread r alone touches rank r's
// backend (it builds it, runs every call on it, and destroys it), so per-thread device state
// (cudaSetDevice) and first-touch memory belong to the rank. A rank whose call fails calls the
// group's abort hook so that ranks blocked in a collective waiting for it return too; once all
// ranks are back the reset hook re-arms the group and the step fails with the first rank's error.
#pragma once

#include <functional>
#include <memory>

#include "common/status.h"
#include "engine/backend.h"
#include "model/model.h"

namespace turbine::engine {

// Builds rank `rank`'s backend; runs on that rank's thread.
using RankFactory = std::function<Result<std::unique_ptr<Backend>>(int rank)>;

// The group's recovery hooks (tp::ShmGroup::abort/reset); either may be empty.
struct TpGroupHooks {
  std::function<void()> abort;  // any thread: unblock ranks waiting in a collective
  std::function<void()> reset;  // while no rank is inside a collective
};

// `size` ranks of `config` (the whole model's); `thread_init(rank)` runs first on each rank thread
// (e.g. cudaSetDevice). Fails when a rank fails to build, or when the ranks disagree on the block
// size, context or KV layout dtype. Ranks may hold different numbers of KV blocks (each GPU sizes
// its pool from its own free memory): the group offers the smallest.
Result<std::unique_ptr<Backend>> make_tensor_parallel_backend(
    const model::ModelConfig& config, int size, RankFactory factory, TpGroupHooks hooks,
    std::function<void(int rank)> thread_init = {});

}  // namespace turbine::engine

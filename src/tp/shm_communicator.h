// The CPU backend's collectives: the ranks of one group are threads of one process, so a
// collective is a barrier plus loads and stores into the other ranks' buffers.
//
// all_reduce_sum: every rank publishes its buffer; after a barrier, rank r sums its 1/size slice
// of the elements over all buffers in rank order and writes the sum into every buffer; a second
// barrier ends it. Each element is summed by exactly one rank, so every rank ends with the same
// bits and no scratch buffer is needed. all_gather and broadcast copy from the published buffers
// between two barriers.
//
// The barrier spins briefly and then sleeps on a futex (std::atomic::wait): ranks on an
// oversubscribed machine (CI) yield their core instead of burning it.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "tp/communicator.h"

namespace turbine::tp {

struct ShmGroup {
  std::vector<std::unique_ptr<Communicator>> comms;  // comms[r] is rank r's
  // Wakes every rank blocked in a collective with an error; every collective fails until reset.
  // Any thread. For a rank that failed while the others wait for it.
  std::function<void()> abort;
  // Clears an abort. Only while no rank is inside a collective.
  std::function<void()> reset;
};

// A group of `size` >= 1 ranks. all_reduce_sum supports kF32 only; all_gather and broadcast any
// type. The communicators share the group's state (it lives as long as any of them or the hooks).
ShmGroup make_shm_group(int size);

}  // namespace turbine::tp

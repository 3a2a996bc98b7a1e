// File: memory_policy.h
// How a training process uses glibc's allocator (LibTorch-free).
//
// A training step allocates and frees the same large activation, gradient and logits buffers
// every step. With glibc's defaults each free of a block above the (dynamic) mmap threshold
// unmaps it, and the heap's free top is returned to the kernel once it passes the trim
// threshold, so the next step takes a page fault, and the kernel zeroes a page, for every 4 KiB
// of them again: at the 100m LoRA configuration about 120,000 faults a step, 7% of its
// samples in `perf` at one thread (docs/llm.md, "Benchmarks").
//
// UseTrainingMallocPolicy, called once at start-up by the programs that train (tessera-client,
// tessera-sim, tessera-model), keeps blocks up to 32 MiB (the largest mmap threshold glibc
// accepts) in the heap and stops trimming it while training; ReleaseFreeMemory
// (core/base/free_memory.h) hands the free memory back to the kernel where a process goes
// idle: after each task of tessera-client. Where the allocator is not glibc's (or a
// sanitizer's replaces it) it does nothing.
#ifndef TESSERA_CLIENT_TRAINING_MEMORY_POLICY_H_
#define TESSERA_CLIENT_TRAINING_MEMORY_POLICY_H_

namespace tessera {

void UseTrainingMallocPolicy();

}  // namespace tessera

#endif  // TESSERA_CLIENT_TRAINING_MEMORY_POLICY_H_

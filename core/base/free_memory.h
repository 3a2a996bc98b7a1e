// File: free_memory.h
// Hands the allocator's free memory back to the kernel (glibc's malloc_trim), for the points
// where a process is about to need a lot at once or goes idle: tessera-client after each task
// (client/training/memory_policy.h), the coordinator before a round's aggregate, which
// allocates the round's mean right after the upload streams freed their buffers. Does nothing
// where the allocator is not glibc's (or a sanitizer's replaces it).
#ifndef TESSERA_CORE_BASE_FREE_MEMORY_H_
#define TESSERA_CORE_BASE_FREE_MEMORY_H_

namespace tessera {

void ReleaseFreeMemory();

}  // namespace tessera

#endif  // TESSERA_CORE_BASE_FREE_MEMORY_H_

#include "client/training/memory_policy.h"

#include <climits>  // also defines __GLIBC__ (features.h) where the C library is glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace tessera {

void UseTrainingMallocPolicy() {
#if defined(__GLIBC__)
  // Fixing the mmap threshold also turns off glibc's dynamic threshold, which would otherwise
  // only reach this value after the first free of each size.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
}

}  // namespace tessera

// File: finite.h
// NaN/Inf checks over raw bytes: values of a tensor that arrive in pieces (an upload's chunks,
// where an element may straddle two pieces and a piece need not be aligned).
#ifndef TESSERA_CORE_MODEL_FINITE_H_
#define TESSERA_CORE_MODEL_FINITE_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/model/tensor.h"

namespace tessera {

// Whether none of `n` values of `dtype` at `data` (any alignment) is NaN or Inf; true for
// integer and bool dtypes.
bool AllFiniteBytes(DType dtype, const char* data, size_t n);

// CheckFinite for `n` values of `dtype` at `data` (any alignment) that are the elements
// `first`, `first` + 1, ... of the tensor `name`: INVALID_ARGUMENT naming the tensor and the
// index in it of the first NaN or Inf.
absl::Status CheckFiniteElements(absl::string_view name, DType dtype, const char* data,
                                 size_t n, size_t first);

}  // namespace tessera

#endif  // TESSERA_CORE_MODEL_FINITE_H_

// File: safetensors.h
// Reads and writes the safetensors format
// (https://huggingface.co/docs/safetensors), the interchange format for model
// weights between Tessera and PyTorch/NumPy tooling:
//
//   [8 bytes: N, little-endian uint64]
//   [N bytes: JSON header, UTF-8, padded with spaces to a multiple of 8]
//     {"__metadata__": {"k": "v", ...},
//      "<tensor>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin,
//      end]}, ...}
//   [tensor bytes, little-endian, contiguous; offsets are relative to the data
//   start]
//
// Writing emits "__metadata__" first (only when non-empty), then the tensors in
// record order with their data in the same order; the output is deterministic.
// Reading validates the whole file and returns the tensors in data-offset
// order.
#ifndef TESSERA_CORE_MODEL_SAFETENSORS_H_
#define TESSERA_CORE_MODEL_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model/tensor.h"

namespace tessera {

// Largest JSON header accepted when reading (the reference implementation's
// limit).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

// Errors: INVALID_ARGUMENT on duplicate tensor names or a tensor named
// "__metadata__".
absl::StatusOr<std::string> SerializeSafetensors(
    const ArrayRecord& record,
    const std::map<std::string, std::string>& metadata = {});

// Parses a complete safetensors buffer. When `metadata` is non-null it receives
// the
// "__metadata__" entries (cleared first).
// Errors: INVALID_ARGUMENT naming the problem: truncated buffer, header length
// out of bounds, header not a JSON object, bad UTF-8, duplicate or unknown
// keys, unknown dtype, bad shape, offsets that overlap, leave gaps or exceed
// the buffer, a byte length that does not match shape x dtype, or trailing
// bytes after the last tensor.
absl::StatusOr<ArrayRecord> ParseSafetensors(
    absl::string_view bytes,
    std::map<std::string, std::string>* metadata = nullptr);

// Writes atomically: serializes, writes `path`.tmp.<pid>.<n>, fsyncs it,
// renames it over `path` and fsyncs the directory. A crash leaves either the
// old or the new file. Errors: as SerializeSafetensors; I/O failures map errno
// to a status (e.g. NOT_FOUND for a missing directory, PERMISSION_DENIED) with
// the path in the message.
absl::Status WriteSafetensorsFile(
    const std::string& path, const ArrayRecord& record,
    const std::map<std::string, std::string>& metadata = {});

// Reads and parses a file. Errors: as ParseSafetensors (prefixed with the
// path), and errno-mapped statuses such as NOT_FOUND when the file cannot be
// read.
absl::StatusOr<ArrayRecord> ReadSafetensorsFile(
    const std::string& path,
    std::map<std::string, std::string>* metadata = nullptr);

}  // namespace tessera

#endif  // TESSERA_CORE_MODEL_SAFETENSORS_H_

// File: tensor_stream_fuzz.cc
// Fuzzes the tensor stream reassembly (every model download and update upload):
// TensorStreamReader over a sequence of serialized wire::v1::TensorChunk messages.
// Input: one flags byte, then chunks, each a 2-byte little-endian length and that many bytes
// of a serialized TensorChunk. Flags: bit 0 require_finite; bit 1 the coordinator's update
// check against a model layout (float32 "w" [2,3], int64 "b" [4]); bit 2 the default limits
// (otherwise 8 tensors / 64 KiB).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/model/tensor.h"
#include "core/serde/tensor_stream.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

const tessera::ArrayRecord& Layout() {
  static const tessera::ArrayRecord* layout = [] {
    auto* r = new tessera::ArrayRecord;
    r->tensors.push_back(*tessera::Tensor::Zeros("w", tessera::DType::kFloat32, {2, 3}));
    r->tensors.push_back(*tessera::Tensor::Zeros("b", tessera::DType::kInt64, {4}));
    return r;
  }();
  return *layout;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tessera::fuzz::Check;
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  tessera::TensorStreamLimits limits;
  limits.require_finite = (flags & 1) != 0;
  if ((flags & 2) != 0) limits.expected_layout = &Layout();
  if ((flags & 4) == 0) {
    limits.max_tensors = 8;
    limits.max_total_bytes = 64 << 10;
  }
  tessera::TensorStreamReader reader(limits);
  size_t pos = 1;
  bool failed = false;
  while (pos + 2 <= size && !failed) {
    const size_t len = data[pos] | (size_t{data[pos + 1]} << 8);
    pos += 2;
    const size_t take = len < size - pos ? len : size - pos;
    tessera::wire::v1::TensorChunk chunk;
    if (!chunk.ParseFromArray(data + pos, static_cast<int>(take))) return 0;
    pos += take;
    const absl::Status added = reader.Add(chunk);
    tessera::fuzz::Report(added);
    failed = !added.ok();
  }
  if (failed || !reader.done()) return 0;
  const std::string digest = reader.digest();
  absl::StatusOr<tessera::ArrayRecord> record = std::move(reader).Finish();
  Check(record.ok(), "Finish succeeds after an accepted end message");
  uint64_t bytes = 0;
  for (const tessera::Tensor& t : record->tensors) bytes += t.byte_size();
  Check(bytes == record->TotalBytes(), "byte count");
  Check(tessera::DigestArrayRecord(*record) == digest, "digest of the result");
  if (limits.expected_layout != nullptr) {
    Check(tessera::CheckSameLayout(Layout(), *record).ok(), "the expected layout");
  }
  return 0;
}

// File: tensor_stream_fuzz.cc
// Fuzzes the tensor stream reassembly (every model download and update upload):
// TensorStreamReader over a sequence of serialized wire::v1::TensorChunk messages.
// Input: one flags byte, then chunks, each a 2-byte little-endian length and that many bytes
// of a serialized TensorChunk. Flags: bit 0 require_finite; bit 1 the coordinator's update
// check against a model layout (float32 "w" [2,3], int64 "b" [4]); bit 2 the default limits
// (otherwise 8 tensors / 64 KiB); bit 3, with bit 1 and without bit 0, the staged upload's
// data sink (TensorStreamLimits::on_data), whose pieces are reassembled and checked.
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
  // The sink's calls must come in the layout's order: pieces of tensor i, then its end with
  // all its bytes. What it got is checked against the stream's digest below.
  const bool sink = (flags & 2) != 0 && (flags & 8) != 0 && (flags & 1) == 0;
  tessera::ArrayRecord sunk;
  size_t ended = 0;
  std::string pending;
  if (sink) {
    limits.on_data = [&](size_t i, absl::string_view piece, bool end) -> absl::Status {
      Check(i == ended && i < Layout().tensors.size(), "pieces in the layout's order");
      const tessera::Tensor& want = Layout().tensors[i];
      if (!end) {
        Check(pending.size() + piece.size() <= want.byte_size(), "no more than the tensor");
        pending.append(piece.data(), piece.size());
        return absl::OkStatus();
      }
      Check(pending.size() == want.byte_size(), "a tensor ends with all its bytes");
      sunk.tensors.push_back(*tessera::Tensor::Create(want.name(), want.dtype(), want.shape(),
                                                      std::move(pending)));
      pending.clear();
      ++ended;
      return absl::OkStatus();
    };
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
  if (sink) {
    Check(record->tensors.empty(), "nothing kept beside the sink");
    Check(ended == Layout().tensors.size(), "every tensor ended");
    Check(tessera::DigestArrayRecord(sunk) == digest, "digest of what the sink got");
    return 0;
  }
  uint64_t bytes = 0;
  for (const tessera::Tensor& t : record->tensors) bytes += t.byte_size();
  Check(bytes == record->TotalBytes(), "byte count");
  Check(tessera::DigestArrayRecord(*record) == digest, "digest of the result");
  if (limits.expected_layout != nullptr) {
    Check(tessera::CheckSameLayout(Layout(), *record).ok(), "the expected layout");
  }
  return 0;
}

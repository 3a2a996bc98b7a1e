// File: update_staging.h
// A round's accepted updates on disk instead of in a model-sized exact accumulator
// (docs/architecture.md, "Coordinator memory"). WeightedAccumulator keeps 25 bytes per
// parameter (6.25 times a float32 model) for the whole round; when that is over the
// coordinator's fold budget, each accepted update is written to its own file as it is
// accepted, and at the end of the round the mean is computed block by block: for every block
// of kStagedBlockElements elements of one tensor, the same block of every staged update is
// read and folded into a WeightedAccumulator of that block alone. The accumulator is exact and
// element-wise, so the result has the same bits as one accumulator over the whole updates, in
// any order (issue #19's property), with O(block) memory instead of O(model).
#ifndef TESSERA_COORDINATOR_ROUND_UPDATE_STAGING_H_
#define TESSERA_COORDINATOR_ROUND_UPDATE_STAGING_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/model/tensor.h"

namespace tessera::coordinator {

// Elements of one tensor folded at once by StagedWeightedMean: its accumulator takes
// 25 bytes per element (6.5 MiB) and its read buffer one element each.
inline constexpr size_t kStagedBlockElements = size_t{1} << 18;

// One staged update's file: removed when this is destroyed (round end, a rejected update,
// an aborted round). Move-only.
class StagedFile {
 public:
  StagedFile() = default;
  explicit StagedFile(std::string path) : path_(std::move(path)) {}
  StagedFile(StagedFile&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  StagedFile& operator=(StagedFile&& other) noexcept;
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;
  ~StagedFile();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class UpdateStaging;

// Writes one update to a new staged file, whole tensors (Append) or chunks as an upload
// streams in (AppendData and EndTensor, from TensorStreamLimits::on_data), so that neither
// an upload nor one of its tensors sits whole in memory. Its UpdateStaging must outlive it.
// Not thread-safe.
class StagedWriter {
 public:
  ~StagedWriter();  // an unfinished file is removed
  StagedWriter(const StagedWriter&) = delete;
  StagedWriter& operator=(const StagedWriter&) = delete;

  // Appends the layout's next tensor. INVALID_ARGUMENT naming the tensor if it is not the
  // next one of the layout (name, dtype, shape) or holds NaN or Inf; write errors as
  // UpdateStaging::Write. After an error the writer is spent.
  absl::Status Append(const Tensor& tensor);
  // The same, in pieces as an upload's chunks arrive (TensorStreamLimits::on_data): bytes of
  // the layout's tensor `index`, which must be the one being written, in order, of any
  // length (an element may straddle two pieces); then EndTensor(index) once it has all its
  // bytes. INVALID_ARGUMENT for another tensor, more bytes than the tensor has, a NaN or Inf
  // (naming the tensor and the element), or EndTensor before all its bytes; write errors as
  // UpdateStaging::Write. The caller has matched the stream's tensor headers to the layout.
  // After an error the writer is spent.
  absl::Status AppendData(size_t index, absl::string_view data);
  absl::Status EndTensor(size_t index);
  // The file, once every tensor of the layout was appended; INVALID_ARGUMENT (and the file
  // removed) otherwise.
  absl::StatusOr<StagedFile> Finish() &&;

 private:
  friend class UpdateStaging;
  StagedWriter(const UpdateStaging* staging, StagedFile file, int fd)
      : staging_(staging), file_(std::move(file)), fd_(fd) {}

  const UpdateStaging* staging_;
  StagedFile file_;
  int fd_;
  size_t next_ = 0;  // index of the next tensor of the layout
  uint64_t written_ = 0;  // bytes of tensor next_ written so far (AppendData)
  std::string partial_;   // the bytes of an element that AppendData has not seen whole yet
  bool failed_ = false;
};

// The directory of one round attempt's staged updates, all of one layout. Thread-safe.
class UpdateStaging {
 public:
  // Creates `dir` (its parent must exist) for updates of `layout`: only the names, dtypes
  // and shapes are kept. Errors: INTERNAL naming the directory and errno's text (it exists
  // already, or cannot be made).
  static absl::StatusOr<std::shared_ptr<UpdateStaging>> Create(std::string dir,
                                                               const ArrayRecord& layout);
  // Removes the files still in the directory, and the directory.
  ~UpdateStaging();
  UpdateStaging(const UpdateStaging&) = delete;
  UpdateStaging& operator=(const UpdateStaging&) = delete;

  const std::string& dir() const { return dir_; }

  // Writes the tensor bytes of `update` to a new file (not synced: a crash ends the round, and
  // a restarted coordinator empties the staging root, ResetStagingRoot). Errors:
  // INVALID_ARGUMENT if `update` does not have the layout (CheckSameLayout); RESOURCE_EXHAUSTED
  // when the disk is full; INTERNAL for other write errors, naming the file.
  absl::StatusOr<StagedFile> Write(const ArrayRecord& update);
  // A writer of a new file, for an update that arrives tensor by tensor. Errors: as Write.
  absl::StatusOr<std::unique_ptr<StagedWriter>> Begin();

  // The exact weighted mean sum_k(weights[k] * x_k) / sum_k(weights[k]) of the staged
  // updates x_k in `files`, with the same bits as WeightedAccumulator::Add of the whole
  // updates followed by Average(), whatever the order of `files`. Reads `block_elements`
  // elements of one tensor of every file at a time. `total_weight`, when not null, gets
  // the accumulator's exact total weight. Errors: INVALID_ARGUMENT if `files` is empty, the
  // spans differ in length or a weight is rejected by WeightedAccumulator; DATA_LOSS naming
  // the file if one is missing, has another size than the layout's, cannot be read, or holds
  // NaN or Inf (the updates were checked finite before they were staged).
  absl::StatusOr<ArrayRecord> WeightedMean(absl::Span<const StagedFile* const> files,
                                           absl::Span<const double> weights,
                                           double* total_weight = nullptr,
                                           size_t block_elements = kStagedBlockElements) const;

  // base += WeightedMean(files, weights), block by block into base's own buffers, each
  // element added as aggregation::ApplyDelta adds it: the same bits as ApplyDelta(base,
  // WeightedMean(...)) without the mean ever held whole (the aggregate station's next model,
  // docs/architecture.md "Coordinator memory"). `base` must have the staged layout
  // (INVALID_ARGUMENT naming the first tensor that differs). Other errors as WeightedMean, and
  // OUT_OF_RANGE where a sum is not representable (ApplyDeltaRange). On an error after the
  // first block, base's earlier blocks hold their sums: the caller discards it.
  absl::Status AddWeightedMeanTo(absl::Span<const StagedFile* const> files,
                                 absl::Span<const double> weights, ArrayRecord& base,
                                 double* total_weight = nullptr,
                                 size_t block_elements = kStagedBlockElements) const;

  // Bytes of one staged file (the layout's tensor bytes).
  uint64_t file_bytes() const { return file_bytes_; }

 private:
  friend class StagedWriter;
  struct Spec {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t offset = 0;  // of the tensor's bytes in a staged file
    uint64_t bytes = 0;
  };
  // The checks and the block loop of WeightedMean: `take(i, start, mean)` gets the mean of
  // the elements [start, start + mean.numel()) of tensor i, in layout order.
  absl::Status FoldBlocks(
      absl::Span<const StagedFile* const> files, absl::Span<const double> weights,
      double* total_weight, size_t block_elements,
      const std::function<absl::Status(size_t, size_t, const Tensor&)>& take) const;
  UpdateStaging(std::string dir, std::vector<Spec> specs, uint64_t file_bytes)
      : dir_(std::move(dir)), specs_(std::move(specs)), file_bytes_(file_bytes) {}

  const std::string dir_;
  const std::vector<Spec> specs_;
  const uint64_t file_bytes_;
  std::atomic<uint64_t> next_{0};
};

// Coordinator start: removes everything under `root` (staged updates of rounds that a crash
// or a restart interrupted; no round survives a restart) and creates `root` empty. Errors:
// INTERNAL naming the path and errno's text.
absl::Status ResetStagingRoot(const std::string& root);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_UPDATE_STAGING_H_

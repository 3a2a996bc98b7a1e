// A round's accepted updates on disk, and their exact mean block by block
// (update_staging.h).
#include "coordinator/round/update_staging.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "aggregation/fed_avg.h"
#include "core/base/status_macros.h"
#include "core/model/finite.h"

namespace tessera::coordinator {
namespace {

// Closes a descriptor when it goes out of scope (reads only: a write's close is checked).
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status ErrnoError(int err, const std::string& what) {
  const std::string message = absl::StrCat(what, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

absl::Status WriteAll(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, absl::StrCat("writing staged update ", path));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

// Reads exactly `n` bytes at `offset` of `path`. DATA_LOSS if the file is missing or short.
absl::Status ReadAt(const std::string& path, uint64_t offset, char* out, size_t n) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return absl::DataLossError(
        absl::StrCat("staged update ", path, " cannot be opened: ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd.get(), out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      return absl::DataLossError(
          absl::StrCat("staged update ", path, " cannot be read: ", std::strerror(errno)));
    }
    if (r == 0) {
      return absl::DataLossError(absl::StrCat("staged update ", path, " ends at byte ",
                                              offset + done, "; expected more"));
    }
    done += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

}  // namespace

StagedFile& StagedFile::operator=(StagedFile&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) ::unlink(path_.c_str());
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

StagedFile::~StagedFile() {
  if (!path_.empty()) ::unlink(path_.c_str());  // ENOENT (already removed) is fine
}

absl::StatusOr<std::shared_ptr<UpdateStaging>> UpdateStaging::Create(std::string dir,
                                                                     const ArrayRecord& layout) {
  std::vector<Spec> specs;
  specs.reserve(layout.tensors.size());
  uint64_t offset = 0;
  for (const Tensor& t : layout.tensors) {
    specs.push_back({t.name(), t.dtype(), t.shape(), offset, t.byte_size()});
    offset += t.byte_size();
  }
  if (::mkdir(dir.c_str(), 0700) != 0) {
    return ErrnoError(errno, absl::StrCat("creating staging directory ", dir));
  }
  return std::shared_ptr<UpdateStaging>(
      new UpdateStaging(std::move(dir), std::move(specs), offset));
}

UpdateStaging::~UpdateStaging() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::StatusOr<std::unique_ptr<StagedWriter>> UpdateStaging::Begin() {
  std::string path = absl::StrCat(dir_, "/", next_.fetch_add(1), ".update");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  // Nothing was created on failure: the path is not handed to a StagedFile to remove.
  if (fd < 0) return ErrnoError(errno, absl::StrCat("creating staged update ", path));
  return std::unique_ptr<StagedWriter>(new StagedWriter(this, StagedFile(std::move(path)), fd));
}

absl::StatusOr<StagedFile> UpdateStaging::Write(const ArrayRecord& update) {
  if (update.tensors.size() != specs_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("staged update: ", update.tensors.size(),
                                                   " tensors; the round's layout has ",
                                                   specs_.size()));
  }
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<StagedWriter> writer, Begin());
  for (const Tensor& t : update.tensors) TESSERA_RETURN_IF_ERROR(writer->Append(t));
  return std::move(*writer).Finish();
}

StagedWriter::~StagedWriter() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status StagedWriter::Append(const Tensor& tensor) {
  if (failed_ || fd_ < 0) return absl::FailedPreconditionError("staged update: writer is spent");
  failed_ = true;  // until this tensor is written whole
  const std::vector<UpdateStaging::Spec>& specs = staging_->specs_;
  if (next_ >= specs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("staged update: tensor \"", tensor.name(),
                                                   "\" is past the layout's ", specs.size(),
                                                   " tensors"));
  }
  const UpdateStaging::Spec& spec = specs[next_];
  if (tensor.name() != spec.name || tensor.dtype() != spec.dtype ||
      tensor.shape() != spec.shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "staged update: tensor ", next_, " \"", tensor.name(), "\" does not match the round's \"",
        spec.name, "\" (name, dtype and shape)"));
  }
  failed_ = false;
  TESSERA_RETURN_IF_ERROR(AppendData(next_, tensor.data()));
  return EndTensor(next_);
}

absl::Status StagedWriter::AppendData(size_t index, absl::string_view data) {
  if (failed_ || fd_ < 0) return absl::FailedPreconditionError("staged update: writer is spent");
  failed_ = true;  // until these bytes are written
  const std::vector<UpdateStaging::Spec>& specs = staging_->specs_;
  if (index != next_ || next_ >= specs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("staged update: data for tensor ", index,
                                                   " while tensor ", next_, " of ",
                                                   specs.size(), " is being written"));
  }
  const UpdateStaging::Spec& spec = specs[next_];
  if (data.size() > spec.bytes - written_) {
    return absl::InvalidArgumentError(absl::StrCat("staged update: tensor \"", spec.name,
                                                   "\" has ", spec.bytes, " bytes; got more"));
  }
  // Finiteness, element by element across the pieces: an element split between two pieces
  // waits in partial_ for its other bytes.
  const size_t size = DTypeSize(spec.dtype);
  size_t element = (written_ - partial_.size()) / size;  // the first one not checked yet
  absl::string_view rest = data;
  if (!partial_.empty()) {
    const size_t take = std::min(size - partial_.size(), rest.size());
    partial_.append(rest.data(), take);
    rest.remove_prefix(take);
    if (partial_.size() == size) {
      TESSERA_RETURN_IF_ERROR(
          CheckFiniteElements(spec.name, spec.dtype, partial_.data(), 1, element));
      partial_.clear();
      ++element;
    }
  }
  const size_t whole = partial_.empty() ? rest.size() / size : 0;
  TESSERA_RETURN_IF_ERROR(CheckFiniteElements(spec.name, spec.dtype, rest.data(), whole, element));
  partial_.append(rest.data() + whole * size, rest.size() - whole * size);
  TESSERA_RETURN_IF_ERROR(WriteAll(fd_, data.data(), data.size(), file_.path()));
  written_ += data.size();
  failed_ = false;
  return absl::OkStatus();
}

absl::Status StagedWriter::EndTensor(size_t index) {
  if (failed_ || fd_ < 0) return absl::FailedPreconditionError("staged update: writer is spent");
  failed_ = true;
  const std::vector<UpdateStaging::Spec>& specs = staging_->specs_;
  if (index != next_ || next_ >= specs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("staged update: end of tensor ", index,
                                                   " while tensor ", next_, " of ",
                                                   specs.size(), " is being written"));
  }
  if (written_ != specs[next_].bytes) {
    return absl::InvalidArgumentError(absl::StrCat("staged update: tensor \"", specs[next_].name,
                                                   "\" ended after ", written_, " of ",
                                                   specs[next_].bytes, " bytes"));
  }
  ++next_;
  written_ = 0;
  failed_ = false;
  return absl::OkStatus();
}

absl::StatusOr<StagedFile> StagedWriter::Finish() && {
  if (failed_ || fd_ < 0) return absl::FailedPreconditionError("staged update: writer is spent");
  const size_t expected = staging_->specs_.size();
  const int fd = fd_;
  fd_ = -1;
  if (next_ != expected) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("staged update: ", next_, " of the round's ",
                                                   expected, " tensors arrived"));
  }
  if (::close(fd) != 0) {
    return ErrnoError(errno, absl::StrCat("closing staged update ", file_.path()));
  }
  return std::move(file_);
}

absl::Status UpdateStaging::FoldBlocks(
    absl::Span<const StagedFile* const> files, absl::Span<const double> weights,
    double* total_weight, size_t block_elements,
    const std::function<absl::Status(size_t, size_t, const Tensor&)>& take) const {
  if (files.empty()) return absl::InvalidArgumentError("no staged updates to average");
  if (files.size() != weights.size()) {
    return absl::InvalidArgumentError(absl::StrCat(files.size(), " staged updates but ",
                                                   weights.size(), " weights"));
  }
  if (block_elements == 0) return absl::InvalidArgumentError("block_elements must be positive");
  // Every file must be exactly one update long: a shorter or longer one is not ours.
  for (const StagedFile* f : files) {
    struct stat st;
    if (::stat(f->path().c_str(), &st) != 0) {
      return absl::DataLossError(
          absl::StrCat("staged update ", f->path(), " is missing: ", std::strerror(errno)));
    }
    if (static_cast<uint64_t>(st.st_size) != file_bytes_) {
      return absl::DataLossError(absl::StrCat("staged update ", f->path(), " has ", st.st_size,
                                              " bytes; the round's layout has ", file_bytes_));
    }
  }
  {
    // The weights alone, folded as the accumulator folds them: refuses a bad weight before
    // any file is read, and gives the exact total.
    const ArrayRecord empty;
    TESSERA_ASSIGN_OR_RETURN(aggregation::WeightedAccumulator weights_only,
                             aggregation::WeightedAccumulator::Create(empty));
    for (double w : weights) TESSERA_RETURN_IF_ERROR(weights_only.Add(empty, w));
    if (total_weight != nullptr) *total_weight = weights_only.total_weight();
  }
  for (size_t i = 0; i < specs_.size(); ++i) {
    const Spec& spec = specs_[i];
    const size_t esize = DTypeSize(spec.dtype);
    TESSERA_ASSIGN_OR_RETURN(const int64_t numel, NumElements(spec.shape));
    const size_t n = static_cast<size_t>(numel);
    for (size_t start = 0; start < n; start += block_elements) {
      const size_t m = std::min(block_elements, n - start);
      ArrayRecord block;
      TESSERA_ASSIGN_OR_RETURN(
          Tensor buffer, Tensor::Zeros(spec.name, spec.dtype, {static_cast<int64_t>(m)}));
      block.tensors.push_back(std::move(buffer));
      TESSERA_ASSIGN_OR_RETURN(aggregation::WeightedAccumulator acc,
                               aggregation::WeightedAccumulator::Create(block));
      for (size_t k = 0; k < files.size(); ++k) {
        TESSERA_RETURN_IF_ERROR(ReadAt(files[k]->path(), spec.offset + start * esize,
                                       block.tensors[0].mutable_data()->data(), m * esize));
        // Add, not AddFinite: the bytes come back from disk, so they are checked again. The
        // layout and the weights are valid, so only NaN or Inf can be refused here.
        if (absl::Status s = acc.Add(block, weights[k]); !s.ok()) {
          return absl::DataLossError(
              absl::StrCat("staged update ", files[k]->path(), ": ", s.message()));
        }
      }
      block.tensors.clear();  // the read buffer goes before the block's mean is made
      TESSERA_ASSIGN_OR_RETURN(ArrayRecord avg, std::move(acc).Average());
      TESSERA_RETURN_IF_ERROR(take(i, start, avg.tensors[0]));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ArrayRecord> UpdateStaging::WeightedMean(absl::Span<const StagedFile* const> files,
                                                        absl::Span<const double> weights,
                                                        double* total_weight,
                                                        size_t block_elements) const {
  ArrayRecord mean;
  mean.tensors.reserve(specs_.size());
  for (const Spec& spec : specs_) {
    TESSERA_ASSIGN_OR_RETURN(Tensor out, Tensor::Zeros(spec.name, spec.dtype, spec.shape));
    mean.tensors.push_back(std::move(out));
  }
  TESSERA_RETURN_IF_ERROR(FoldBlocks(
      files, weights, total_weight, block_elements,
      [&](size_t i, size_t start, const Tensor& avg) {
        std::memcpy(mean.tensors[i].mutable_data()->data() + start * DTypeSize(avg.dtype()),
                    avg.data().data(), avg.byte_size());
        return absl::OkStatus();
      }));
  return mean;
}

absl::Status UpdateStaging::AddWeightedMeanTo(absl::Span<const StagedFile* const> files,
                                             absl::Span<const double> weights,
                                             ArrayRecord& base, double* total_weight,
                                             size_t block_elements) const {
  if (base.tensors.size() != specs_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the base model has ", base.tensors.size(),
                                                   " tensors; the staged updates have ",
                                                   specs_.size()));
  }
  for (size_t i = 0; i < specs_.size(); ++i) {
    const Tensor& t = base.tensors[i];
    if (t.name() != specs_[i].name || t.dtype() != specs_[i].dtype ||
        t.shape() != specs_[i].shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "base model tensor ", i, " is ", t.DebugString(), "; the staged updates have \"",
          specs_[i].name, "\" ", DTypeName(specs_[i].dtype), "[",
          absl::StrJoin(specs_[i].shape, ","), "]"));
    }
  }
  return FoldBlocks(files, weights, total_weight, block_elements,
                    [&](size_t i, size_t start, const Tensor& avg) {
                      return aggregation::ApplyDeltaRange(base.tensors[i], start, avg);
                    });
}

absl::Status ResetStagingRoot(const std::string& root) {
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("removing staging root ", root, ": ", ec.message()));
  }
  if (::mkdir(root.c_str(), 0700) != 0) {
    return ErrnoError(errno, absl::StrCat("creating staging root ", root));
  }
  return absl::OkStatus();
}

}  // namespace tessera::coordinator

#include "core/serde/tensor_stream.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/byte_order.h"
#include "core/base/status_macros.h"
#include "core/crypto/sha256.h"

namespace tessera {
namespace {

constexpr absl::string_view kDigestDomain = "tessera.tensors.v1";
// The most a tensor header makes the reader allocate before its data arrives.
constexpr uint64_t kReserveAheadBytes = 64ull << 20;

template <typename T>
void HashInt(crypto::Sha256& hash, T value) {
  std::string bytes;
  AppendLittleEndian(bytes, static_cast<uint64_t>(value), sizeof(T));
  hash.Update(bytes);
}

// Everything of a tensor but its data, in the canonical form of docs/wire_protocol.md.
void HashTensorHeader(crypto::Sha256& hash, absl::string_view name, DType dtype,
                      absl::Span<const int64_t> shape, uint64_t data_bytes) {
  HashInt<uint32_t>(hash, static_cast<uint32_t>(name.size()));
  hash.Update(name);
  HashInt<uint32_t>(hash, static_cast<uint32_t>(dtype));
  HashInt<uint32_t>(hash, static_cast<uint32_t>(shape.size()));
  for (int64_t d : shape) HashInt<int64_t>(hash, d);
  HashInt<uint64_t>(hash, data_bytes);
}

void HashStreamHeader(crypto::Sha256& hash, uint32_t num_tensors) {
  hash.Update(kDigestDomain);
  HashInt<uint32_t>(hash, num_tensors);
}

}  // namespace

bool IsScaffoldVariate(const Tensor& tensor) {
  return tensor.name().rfind(kScaffoldVariatePrefix, 0) == 0;
}

ArrayRecord WithoutScaffoldVariate(const ArrayRecord& record) {
  ArrayRecord out;
  for (const Tensor& t : record.tensors) {
    if (!IsScaffoldVariate(t)) out.tensors.push_back(t);
  }
  return out;
}

std::string DigestArrayRecord(const ArrayRecord& record) {
  crypto::Sha256 hash;
  HashStreamHeader(hash, static_cast<uint32_t>(record.tensors.size()));
  for (const Tensor& t : record.tensors) {
    HashTensorHeader(hash, t.name(), t.dtype(), t.shape(), t.byte_size());
    hash.Update(t.data());
  }
  return std::move(hash).Finish();
}

TensorStreamWriter::TensorStreamWriter(const ArrayRecord* record,
                                       std::optional<std::string> digest,
                                       size_t chunk_bytes)
    : record_(record),
      chunk_bytes_(std::clamp<size_t>(chunk_bytes, 1, kMaxChunkBytes)),
      digest_(std::move(digest)) {
  if (!digest_.has_value()) hash_ = std::make_unique<crypto::Sha256>();
}

TensorStreamWriter::~TensorStreamWriter() = default;

bool TensorStreamWriter::Next(wire::v1::TensorChunk* chunk) {
  // No chunk->Clear(): consecutive data messages reuse the 1 MiB string's buffer.
  switch (phase_) {
    case Phase::kBegin: {
      auto* begin = chunk->mutable_begin();
      begin->Clear();
      begin->set_num_tensors(static_cast<uint32_t>(record_->tensors.size()));
      begin->set_total_bytes(record_->TotalBytes());
      if (hash_) HashStreamHeader(*hash_, begin->num_tensors());
      phase_ = record_->tensors.empty() ? Phase::kEnd : Phase::kTensorHeader;
      return true;
    }
    case Phase::kTensorHeader: {
      const Tensor& t = record_->tensors[tensor_];
      auto* header = chunk->mutable_tensor();
      header->Clear();
      header->set_name(t.name());
      header->set_dtype(static_cast<wire::v1::DType>(t.dtype()));
      for (int64_t d : t.shape()) header->add_shape(d);
      if (hash_) HashTensorHeader(*hash_, t.name(), t.dtype(), t.shape(), t.byte_size());
      offset_ = 0;
      phase_ = t.byte_size() > 0 ? Phase::kData : Phase::kTensorHeader;
      if (t.byte_size() == 0 && ++tensor_ == record_->tensors.size()) phase_ = Phase::kEnd;
      return true;
    }
    case Phase::kData: {
      const Tensor& t = record_->tensors[tensor_];
      const size_t n = std::min(chunk_bytes_, t.byte_size() - offset_);
      absl::string_view piece(t.data().data() + offset_, n);
      chunk->mutable_data()->assign(piece.data(), piece.size());
      if (hash_) hash_->Update(piece);
      offset_ += n;
      data_bytes_sent_ += n;
      if (offset_ == t.byte_size()) {
        phase_ = ++tensor_ == record_->tensors.size() ? Phase::kEnd : Phase::kTensorHeader;
      }
      return true;
    }
    case Phase::kEnd: {
      std::string digest = hash_ ? std::move(*hash_).Finish() : *digest_;
      chunk->mutable_end()->Clear();
      chunk->mutable_end()->set_sha256(std::move(digest));
      phase_ = Phase::kDone;
      return true;
    }
    case Phase::kDone:
      chunk->Clear();
      return false;
  }
  return false;
}

TensorStreamReader::TensorStreamReader(TensorStreamLimits limits)
    : limits_(limits), hash_(std::make_unique<crypto::Sha256>()) {}

TensorStreamReader::~TensorStreamReader() = default;

absl::Status TensorStreamReader::FinishTensor() {
  if (!current_.has_value()) return absl::OkStatus();
  if (current_received_ != current_expected_) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", current_->name(), "\" got ",
                                                   current_received_, " of ",
                                                   current_expected_, " bytes"));
  }
  if (limits_.on_data) {
    // The layout was matched at the header, so names are the layout's (unique or refused
    // by the layout's owner); the data went to the sink as it came.
    current_.reset();
    return limits_.on_data(tensors_++, absl::string_view(), /*end=*/true);
  }
  std::vector<int64_t> shape(current_->shape().begin(), current_->shape().end());
  TESSERA_ASSIGN_OR_RETURN(Tensor tensor, Tensor::Create(current_->name(), current_dtype_,
                                                         std::move(shape),
                                                         std::move(current_data_)));
  current_data_.clear();
  current_.reset();
  if (limits_.require_finite) TESSERA_RETURN_IF_ERROR(CheckFinite(tensor));
  ++tensors_;
  record_.tensors.push_back(std::move(tensor));
  return absl::OkStatus();
}

absl::Status TensorStreamReader::AddData(const std::string& data, std::string* take) {
  if (!current_.has_value()) {
    return absl::InvalidArgumentError("tensor stream: data before a tensor header");
  }
  if (data.size() > kMaxChunkBytes) {
    return absl::InvalidArgumentError(absl::StrCat("tensor stream: chunk of ", data.size(),
                                                   " bytes exceeds the limit of ",
                                                   kMaxChunkBytes));
  }
  if (current_received_ + data.size() > current_expected_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor stream: tensor \"", current_->name(), "\" overflows its ",
        current_expected_, " bytes"));
  }
  hash_->Update(data);
  data_bytes_ += data.size();
  current_received_ += data.size();
  if (limits_.on_data) return limits_.on_data(tensors_, data, /*end=*/false);
  if (take != nullptr && current_data_.empty() && data.size() == current_expected_) {
    // The whole tensor in one chunk: take its buffer; the chunk gets the one reserved at
    // the header, for the next message to be parsed into.
    current_data_.swap(*take);
    return absl::OkStatus();
  }
  const uint64_t needed = current_data_.size() + data.size();
  if (needed > current_data_.capacity()) {
    current_data_.reserve(std::min<uint64_t>(
        current_expected_, std::max<uint64_t>(needed, 2 * current_data_.capacity())));
  }
  current_data_.append(data);
  return absl::OkStatus();
}

absl::Status TensorStreamReader::Add(wire::v1::TensorChunk&& chunk) {
  if (!done_ && chunk.kind_case() == wire::v1::TensorChunk::kData) {
    return AddData(chunk.data(), chunk.mutable_data());
  }
  return Add(static_cast<const wire::v1::TensorChunk&>(chunk));
}

absl::Status TensorStreamReader::Add(const wire::v1::TensorChunk& chunk) {
  if (done_) return absl::InvalidArgumentError("tensor stream: message after the end");
  switch (chunk.kind_case()) {
    case wire::v1::TensorChunk::kBegin: {
      if (begun_) return absl::InvalidArgumentError("tensor stream: second begin message");
      if (limits_.on_data && limits_.expected_layout == nullptr) {
        return absl::InternalError("tensor stream: a data sink needs an expected layout");
      }
      if (limits_.on_data && limits_.require_finite) {
        return absl::InternalError(
            "tensor stream: a data sink checks finiteness itself (require_finite is unused)");
      }
      begun_ = true;
      declared_tensors_ = chunk.begin().num_tensors();
      declared_bytes_ = chunk.begin().total_bytes();
      if (declared_tensors_ > limits_.max_tensors) {
        return absl::InvalidArgumentError(absl::StrCat("tensor stream: ", declared_tensors_,
                                                       " tensors exceeds the limit of ",
                                                       limits_.max_tensors));
      }
      if (declared_bytes_ > limits_.max_total_bytes) {
        return absl::InvalidArgumentError(absl::StrCat("tensor stream: ", declared_bytes_,
                                                       " bytes exceeds the limit of ",
                                                       limits_.max_total_bytes));
      }
      if (limits_.expected_layout != nullptr &&
          (declared_tensors_ != limits_.expected_layout->tensors.size() ||
           declared_bytes_ != limits_.expected_layout->TotalBytes())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor stream: declares ", declared_tensors_, " tensors / ", declared_bytes_,
            " bytes, the model has ", limits_.expected_layout->tensors.size(), " / ",
            limits_.expected_layout->TotalBytes()));
      }
      HashStreamHeader(*hash_, declared_tensors_);
      return absl::OkStatus();
    }
    case wire::v1::TensorChunk::kTensor: {
      if (!begun_) return absl::InvalidArgumentError("tensor stream: tensor before begin");
      TESSERA_RETURN_IF_ERROR(FinishTensor());
      const wire::v1::TensorHeader& header = chunk.tensor();
      const size_t index = tensors_;
      if (index >= declared_tensors_) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor stream: more tensors than the ", declared_tensors_, " declared"));
      }
      TESSERA_ASSIGN_OR_RETURN(DType dtype, DTypeFromWire(header.dtype()));
      if (header.shape_size() > static_cast<int>(kMaxTensorRank)) {
        return absl::InvalidArgumentError(absl::StrCat("tensor \"", header.name(),
                                                       "\": rank over ", kMaxTensorRank));
      }
      TESSERA_ASSIGN_OR_RETURN(int64_t numel, NumElements(header.shape()));
      if (static_cast<uint64_t>(numel) > kMaxTensorBytes / DTypeSize(dtype)) {
        return absl::InvalidArgumentError(absl::StrCat("tensor \"", header.name(),
                                                       "\" is too large"));
      }
      if (limits_.expected_layout != nullptr) {
        const Tensor& want = limits_.expected_layout->tensors[index];
        std::vector<int64_t> shape(header.shape().begin(), header.shape().end());
        if (want.name() != header.name() || want.dtype() != dtype || want.shape() != shape) {
          return absl::InvalidArgumentError(absl::StrCat(
              "tensor ", index, ": expected ", want.DebugString(), ", got \"",
              header.name(), "\" ", DTypeName(dtype), "[",
              absl::StrJoin(shape, ","), "]"));
        }
      }
      current_ = header;
      current_dtype_ = dtype;
      current_expected_ = static_cast<uint64_t>(numel) * DTypeSize(dtype);
      if (data_bytes_ + current_expected_ > declared_bytes_) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor stream: tensor \"", header.name(), "\" exceeds the declared ",
            declared_bytes_, " bytes"));
      }
      current_data_.clear();
      current_received_ = 0;
      // A header alone must not cost its tensor's size: reserve at most kReserveAheadBytes
      // now, and grow with the data that arrives (nothing when the data goes to a sink).
      if (!limits_.on_data) {
        current_data_.reserve(std::min<uint64_t>(current_expected_, kReserveAheadBytes));
      }
      HashTensorHeader(*hash_, header.name(), dtype, header.shape(), current_expected_);
      return absl::OkStatus();
    }
    case wire::v1::TensorChunk::kData:
      return AddData(chunk.data(), nullptr);
    case wire::v1::TensorChunk::kEnd: {
      if (!begun_) return absl::InvalidArgumentError("tensor stream: end before begin");
      TESSERA_RETURN_IF_ERROR(FinishTensor());
      if (tensors_ != declared_tensors_ || data_bytes_ != declared_bytes_) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor stream truncated: got ", tensors_, " tensors / ",
            data_bytes_, " bytes of ", declared_tensors_, " / ", declared_bytes_));
      }
      digest_ = std::move(*hash_).Finish();
      if (chunk.end().sha256() != digest_) {
        return absl::DataLossError("tensor stream: SHA-256 mismatch");
      }
      TESSERA_RETURN_IF_ERROR(CheckUniqueNames(record_));
      done_ = true;
      return absl::OkStatus();
    }
    case wire::v1::TensorChunk::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("tensor stream: empty message");
}

absl::StatusOr<ArrayRecord> TensorStreamReader::Finish() && {
  if (!done_) {
    return absl::InvalidArgumentError(absl::StrCat("tensor stream truncated after ",
                                                   data_bytes_, " bytes"));
  }
  return std::move(record_);
}

}  // namespace tessera

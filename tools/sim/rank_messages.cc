#include "tools/sim/rank_messages.h"

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/byte_order.h"
#include "core/base/status_macros.h"

namespace tessera::sim {
namespace {

void PutU64(std::string& out, uint64_t v) { AppendLittleEndian(out, v, 8); }
void PutF64(std::string& out, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  PutU64(out, bits);
}
void PutBytes(std::string& out, absl::string_view b) {
  PutU64(out, b.size());
  out.append(b.data(), b.size());
}
void PutRecord(std::string& out, const ArrayRecord& record) {
  PutU64(out, record.tensors.size());
  for (const Tensor& t : record.tensors) {
    PutBytes(out, t.name());
    PutU64(out, static_cast<uint64_t>(t.dtype()));
    PutU64(out, t.shape().size());
    for (int64_t d : t.shape()) PutU64(out, static_cast<uint64_t>(d));
    PutBytes(out, t.data());
  }
}

absl::StatusOr<std::string> Checked(std::string out, absl::string_view what) {
  TESSERA_RETURN_IF_ERROR(CheckRankMessageSize(out.size(), what));
  return out;
}

// Reads one message; every error names the message and the field.
class Reader {
 public:
  Reader(absl::string_view bytes, absl::string_view message, RankMessageKind kind)
      : rest_(bytes), message_(message), kind_(kind) {}

  absl::Status Kind() {
    if (rest_.empty() || static_cast<uint8_t>(rest_[0]) != static_cast<uint8_t>(kind_)) {
      return absl::InvalidArgumentError(
          absl::StrCat("rank message: not a ", message_, " message"));
    }
    rest_.remove_prefix(1);
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> U64(absl::string_view field) {
    if (rest_.size() < 8) return Short(field);
    const uint64_t v = LoadLittleEndian(rest_.data(), 8);
    rest_.remove_prefix(8);
    return v;
  }
  absl::StatusOr<double> F64(absl::string_view field) {
    TESSERA_ASSIGN_OR_RETURN(uint64_t bits, U64(field));
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  absl::StatusOr<std::string> Bytes(absl::string_view field) {
    TESSERA_ASSIGN_OR_RETURN(uint64_t n, U64(field));
    if (n > rest_.size()) return Short(field);
    std::string out(rest_.substr(0, n));
    rest_.remove_prefix(n);
    return out;
  }
  // A count of items that each take at least `min_bytes`: bounded by what is left, so a
  // corrupt count cannot make the reader reserve memory.
  absl::StatusOr<uint64_t> Count(absl::string_view field, size_t min_bytes) {
    TESSERA_ASSIGN_OR_RETURN(uint64_t n, U64(field));
    if (n > rest_.size() / min_bytes) return Short(field);
    return n;
  }
  absl::StatusOr<ArrayRecord> Record(absl::string_view field) {
    ArrayRecord record;
    TESSERA_ASSIGN_OR_RETURN(uint64_t n, Count(absl::StrCat(field, " count"), 32));
    for (uint64_t i = 0; i < n; ++i) {
      const std::string at = absl::StrCat(field, " tensor ", i);
      TESSERA_ASSIGN_OR_RETURN(std::string name, Bytes(absl::StrCat(at, " name")));
      TESSERA_ASSIGN_OR_RETURN(uint64_t dtype, U64(absl::StrCat(at, " dtype")));
      TESSERA_ASSIGN_OR_RETURN(uint64_t rank, Count(absl::StrCat(at, " rank"), 8));
      std::vector<int64_t> shape;
      for (uint64_t d = 0; d < rank; ++d) {
        TESSERA_ASSIGN_OR_RETURN(uint64_t dim, U64(absl::StrCat(at, " shape")));
        shape.push_back(static_cast<int64_t>(dim));
      }
      TESSERA_ASSIGN_OR_RETURN(std::string data, Bytes(absl::StrCat(at, " data")));
      absl::StatusOr<DType> type = DTypeFromWire(static_cast<int>(dtype));
      if (dtype > 255 || !type.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("rank message: ", message_, ": ", at, " has unknown dtype ", dtype));
      }
      absl::StatusOr<Tensor> t = Tensor::Create(std::move(name), *type, std::move(shape),
                                                std::move(data));
      if (!t.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("rank message: ", message_, ": ", at, ": ", t.status().message()));
      }
      record.tensors.push_back(*std::move(t));
    }
    return record;
  }
  absl::Status End() {
    if (rest_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("rank message: ", message_, " has ",
                                                   rest_.size(), " bytes after its last field"));
  }

 private:
  absl::Status Short(absl::string_view field) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank message: ", message_, " is truncated at ", field));
  }
  absl::string_view rest_;
  absl::string_view message_;
  RankMessageKind kind_;
};

std::string Start(RankMessageKind kind) { return std::string(1, static_cast<char>(kind)); }

// A message of `kind` whose fields `fields` reads: its kind byte first, then the fields, then
// nothing after them.
template <typename Fields>
auto Decode(absl::string_view bytes, absl::string_view message, RankMessageKind kind,
            Fields fields) -> decltype(fields(std::declval<Reader&>())) {
  Reader r(bytes, message, kind);
  TESSERA_RETURN_IF_ERROR(r.Kind());
  auto value = fields(r);
  if (!value.ok()) return value.status();
  TESSERA_RETURN_IF_ERROR(r.End());
  return value;
}

// The messages of one u64 field (FLUSH, STOPPED).
std::string EncodeU64Message(RankMessageKind kind, uint64_t value) {
  std::string out = Start(kind);
  PutU64(out, value);
  return out;
}
absl::StatusOr<uint64_t> DecodeU64Message(absl::string_view bytes, absl::string_view message,
                                          RankMessageKind kind, absl::string_view field) {
  return Decode(bytes, message, kind, [field](Reader& r) { return r.U64(field); });
}

// RESULT's fields.
absl::StatusOr<ResultMessage> ResultFields(Reader& r) {
  ResultMessage m;
  TESSERA_ASSIGN_OR_RETURN(m.id, r.U64("id"));
  TESSERA_ASSIGN_OR_RETURN(uint64_t code, r.U64("status code"));
  TESSERA_ASSIGN_OR_RETURN(std::string message, r.Bytes("status message"));
  if (code > static_cast<uint64_t>(absl::StatusCode::kUnauthenticated)) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank message: RESULT has unknown status code ", code));
  }
  m.status = absl::Status(static_cast<absl::StatusCode>(code), message);
  PreparedUpdate& u = m.update;
  TESSERA_ASSIGN_OR_RETURN(u.weight, r.U64("weight"));
  TESSERA_ASSIGN_OR_RETURN(uint64_t metrics, r.Count("metrics count", 16));
  for (uint64_t i = 0; i < metrics; ++i) {
    TESSERA_ASSIGN_OR_RETURN(std::string name, r.Bytes("metric name"));
    TESSERA_ASSIGN_OR_RETURN(double value, r.F64("metric value"));
    u.metrics[std::move(name)] = value;
  }
  TrainResult& t = u.train;
  TESSERA_ASSIGN_OR_RETURN(t.num_examples, r.U64("train.num_examples"));
  TESSERA_ASSIGN_OR_RETURN(t.train_loss, r.F64("train.train_loss"));
  TESSERA_ASSIGN_OR_RETURN(t.steps, r.U64("train.steps"));
  TESSERA_ASSIGN_OR_RETURN(t.examples_processed, r.U64("train.examples_processed"));
  TESSERA_ASSIGN_OR_RETURN(t.seconds, r.F64("train.seconds"));
  TESSERA_ASSIGN_OR_RETURN(t.sampling_rate, r.F64("train.sampling_rate"));
  TESSERA_ASSIGN_OR_RETURN(t.clipped_examples, r.U64("train.clipped_examples"));
  TESSERA_ASSIGN_OR_RETURN(u.update, r.Record("update"));
  TESSERA_ASSIGN_OR_RETURN(uint64_t folded, r.U64("folded"));
  if (folded > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank message: RESULT has folded ", folded, " (0 or 1)"));
  }
  m.folded = folded == 1;
  TESSERA_ASSIGN_OR_RETURN(m.update_bytes, r.U64("update_bytes"));
  return m;
}

}  // namespace

int ShardOf(size_t client, int ranks) {
  return static_cast<int>(client % static_cast<size_t>(ranks));
}

size_t ShardSize(size_t clients, int rank, int ranks) {
  const size_t r = static_cast<size_t>(rank);
  return clients > r ? (clients - r + static_cast<size_t>(ranks) - 1) / static_cast<size_t>(ranks)
                     : 0;
}

absl::Status CheckRankMessageSize(uint64_t bytes, absl::string_view what) {
  if (bytes <= kMaxRankMessageBytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, " would be a message of ", bytes, " bytes between ranks; an MPI message carries at "
      "most ", kMaxRankMessageBytes, " bytes"));
}

absl::StatusOr<std::string> EncodeModel(const ArrayRecord& weights) {
  std::string out = Start(RankMessageKind::kModel);
  out.reserve(weights.TotalBytes() + 64 * weights.tensors.size() + 16);
  PutRecord(out, weights);
  return Checked(std::move(out), "the round's model");
}

absl::StatusOr<std::string> EncodeJob(const JobMessage& job) {
  std::string out = Start(RankMessageKind::kJob);
  PutU64(out, job.id);
  PutU64(out, job.client);
  PutU64(out, job.partial);
  PutBytes(out, job.task);
  return Checked(std::move(out), "a task");
}

absl::StatusOr<std::string> EncodeResult(const ResultMessage& result) {
  std::string out = Start(RankMessageKind::kResult);
  const PreparedUpdate& u = result.update;
  out.reserve(u.update.TotalBytes() + 64 * u.update.tensors.size() + 256);
  PutU64(out, result.id);
  PutU64(out, static_cast<uint64_t>(result.status.code()));
  PutBytes(out, result.status.message());
  PutU64(out, u.weight);
  PutU64(out, u.metrics.size());
  for (const auto& [name, value] : u.metrics) {
    PutBytes(out, name);
    PutF64(out, value);
  }
  const TrainResult& t = u.train;
  PutU64(out, t.num_examples);
  PutF64(out, t.train_loss);
  PutU64(out, t.steps);
  PutU64(out, t.examples_processed);
  PutF64(out, t.seconds);
  PutF64(out, t.sampling_rate);
  PutU64(out, t.clipped_examples);
  PutRecord(out, u.update);
  PutU64(out, result.folded ? 1 : 0);
  PutU64(out, result.update_bytes);
  return Checked(std::move(out), "an update");
}

std::string EncodeFlush(uint64_t partial) {
  return EncodeU64Message(RankMessageKind::kFlush, partial);
}

absl::StatusOr<std::string> EncodePartial(const PartialMessage& partial) {
  std::string out = Start(RankMessageKind::kPartial);
  out.reserve(partial.sums.size() + 32);
  PutU64(out, partial.partial);
  PutBytes(out, partial.sums);
  return Checked(std::move(out), "a partial sum");
}

std::string EncodeStop() { return Start(RankMessageKind::kStop); }

std::string EncodeStopped(uint64_t peak_rss_bytes) {
  return EncodeU64Message(RankMessageKind::kStopped, peak_rss_bytes);
}

absl::StatusOr<RankMessageKind> PeekKind(absl::string_view bytes) {
  if (bytes.empty()) return absl::InvalidArgumentError("rank message: empty");
  const uint8_t k = static_cast<uint8_t>(bytes[0]);
  if (k < static_cast<uint8_t>(RankMessageKind::kModel) ||
      k > static_cast<uint8_t>(RankMessageKind::kPartial)) {
    return absl::InvalidArgumentError(absl::StrCat("rank message: unknown kind ", k));
  }
  return static_cast<RankMessageKind>(k);
}

absl::StatusOr<ArrayRecord> DecodeModel(absl::string_view bytes) {
  return Decode(bytes, "MODEL", RankMessageKind::kModel,
                [](Reader& r) { return r.Record("weights"); });
}

absl::StatusOr<JobMessage> DecodeJob(absl::string_view bytes) {
  return Decode(bytes, "JOB", RankMessageKind::kJob, [](Reader& r) -> absl::StatusOr<JobMessage> {
    JobMessage job;
    TESSERA_ASSIGN_OR_RETURN(job.id, r.U64("id"));
    TESSERA_ASSIGN_OR_RETURN(job.client, r.U64("client"));
    TESSERA_ASSIGN_OR_RETURN(job.partial, r.U64("partial"));
    TESSERA_ASSIGN_OR_RETURN(job.task, r.Bytes("task"));
    return job;
  });
}

absl::StatusOr<ResultMessage> DecodeResult(absl::string_view bytes) {
  return Decode(bytes, "RESULT", RankMessageKind::kResult, ResultFields);
}

absl::Status DecodeStop(absl::string_view bytes) {
  Reader r(bytes, "STOP", RankMessageKind::kStop);
  TESSERA_RETURN_IF_ERROR(r.Kind());
  return r.End();
}

absl::StatusOr<uint64_t> DecodeStopped(absl::string_view bytes) {
  return DecodeU64Message(bytes, "STOPPED", RankMessageKind::kStopped, "peak_rss_bytes");
}

absl::StatusOr<uint64_t> DecodeFlush(absl::string_view bytes) {
  return DecodeU64Message(bytes, "FLUSH", RankMessageKind::kFlush, "partial");
}

absl::StatusOr<PartialMessage> DecodePartial(absl::string_view bytes) {
  return Decode(bytes, "PARTIAL", RankMessageKind::kPartial,
                [](Reader& r) -> absl::StatusOr<PartialMessage> {
                  PartialMessage m;
                  TESSERA_ASSIGN_OR_RETURN(m.partial, r.U64("partial"));
                  TESSERA_ASSIGN_OR_RETURN(m.sums, r.Bytes("sums"));
                  return m;
                });
}

}  // namespace tessera::sim

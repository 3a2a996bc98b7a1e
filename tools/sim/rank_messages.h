// File: rank_messages.h
// What tessera-sim's MPI ranks say to each other (docs/simulation.md, "Across machines with
// Open MPI"), and which rank holds which virtual client. Rank 0 runs the coordinator and
// sends a rank a MODEL (the round's global weights, once per model and rank) and JOBs (a
// client's task); the rank trains the client and answers each JOB with a RESULT (the
// prepared update, or training's error). Where the strategy is linear a JOB names a partial
// sum: the rank folds the update into it and the RESULT carries everything but the values;
// FLUSH asks for that sum, which the rank sends as a PARTIAL. STOP ends a rank, which
// answers STOPPED with its peak RSS. Every message is one byte of kind, then fixed-width
// little-endian fields and length-prefixed byte strings; a decoder checks every length
// against what is left and names the field that does not fit. No MPI here: the bytes travel
// over a RankLink (rank_link.h).
#ifndef TESSERA_TOOLS_SIM_RANK_MESSAGES_H_
#define TESSERA_TOOLS_SIM_RANK_MESSAGES_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/runtime/task_executor.h"
#include "core/model/tensor.h"

namespace tessera::sim {

// The rank that holds (keeps the state of, and trains) virtual client `client` when the run
// spans `ranks` ranks: round-robin, client i on rank i mod ranks, so any selection of
// consecutive clients spreads evenly. REQUIRES: ranks >= 1.
int ShardOf(size_t client, int ranks);
// How many of `clients` virtual clients rank `rank` holds: ceil((clients - rank) / ranks).
size_t ShardSize(size_t clients, int rank, int ranks);

// An MPI message carries at most INT_MAX bytes (its count is an int).
inline constexpr uint64_t kMaxRankMessageBytes = 2147483647;
// INVALID_ARGUMENT naming `what` when `bytes` exceeds kMaxRankMessageBytes.
absl::Status CheckRankMessageSize(uint64_t bytes, absl::string_view what);

enum class RankMessageKind : uint8_t {
  kModel = 1,
  kJob = 2,
  kResult = 3,
  kStop = 4,
  kStopped = 5,
  kFlush = 6,
  kPartial = 7,
};

struct JobMessage {
  uint64_t id = 0;      // rank 0's number for this job, echoed in the RESULT
  uint64_t client = 0;  // the virtual client's index
  // Nonzero: fold the update into this rank's partial sum number `partial` (answered at the
  // FLUSH of that number) where the rank can; 0: send the update in the RESULT.
  uint64_t partial = 0;
  std::string task;  // the wire::v1::Task, serialized
};

struct ResultMessage {
  uint64_t id = 0;
  absl::Status status;    // training's error; then `update` is empty
  PreparedUpdate update;  // every field, TrainResult included
  // The update's values went into the job's partial sum: `update.update` is empty and
  // `update_bytes` is what it would have weighed (the coordinator counts the bytes up).
  bool folded = false;
  uint64_t update_bytes = 0;
};

// A rank's exact partial sum of the updates it folded for one number (FLUSH's answer):
// WeightedAccumulator::Serialize's bytes, empty when it folded none.
struct PartialMessage {
  uint64_t partial = 0;
  std::string sums;
};

// Encoders: INVALID_ARGUMENT when the message would exceed kMaxRankMessageBytes.
absl::StatusOr<std::string> EncodeModel(const ArrayRecord& weights);
absl::StatusOr<std::string> EncodeJob(const JobMessage& job);
absl::StatusOr<std::string> EncodeResult(const ResultMessage& result);
std::string EncodeStop();
std::string EncodeStopped(uint64_t peak_rss_bytes);
std::string EncodeFlush(uint64_t partial);
absl::StatusOr<std::string> EncodePartial(const PartialMessage& partial);

// The kind of a message; INVALID_ARGUMENT when it is empty or of no known kind.
absl::StatusOr<RankMessageKind> PeekKind(absl::string_view bytes);
// Decoders: INVALID_ARGUMENT naming the message and field when the bytes are not a whole
// message of that kind (wrong kind, truncated, trailing bytes, a tensor Tensor::Create
// refuses).
absl::StatusOr<ArrayRecord> DecodeModel(absl::string_view bytes);
absl::StatusOr<JobMessage> DecodeJob(absl::string_view bytes);
absl::StatusOr<ResultMessage> DecodeResult(absl::string_view bytes);
absl::Status DecodeStop(absl::string_view bytes);
absl::StatusOr<uint64_t> DecodeStopped(absl::string_view bytes);
absl::StatusOr<uint64_t> DecodeFlush(absl::string_view bytes);
absl::StatusOr<PartialMessage> DecodePartial(absl::string_view bytes);

}  // namespace tessera::sim

#endif  // TESSERA_TOOLS_SIM_RANK_MESSAGES_H_

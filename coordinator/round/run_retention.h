// File: run_retention.h
// Which round models a run keeps (docs/operations.md, "Runs and retention"). Pure
// functions: RunManager applies them after every commit and when a run is archived.
#ifndef TESSERA_COORDINATOR_ROUND_RUN_RETENTION_H_
#define TESSERA_COORDINATOR_ROUND_RUN_RETENTION_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera::coordinator {

// The coordinator's default policy (tessera-coordinator --retain-last / --retain-every).
inline constexpr uint32_t kDefaultRetainLast = 3;
inline constexpr uint32_t kDefaultRetainEvery = 0;

// Whether the model after `round` stays stored once `completed` rounds are committed:
// - always the current model (round == completed) and every pinned (exported) round;
// - an archived run keeps nothing else;
// - otherwise round 0 (the initial model), the last policy.keep_last() rounds
//   (completed - keep_last < round), and every multiple of policy.keep_every() (if > 0).
// A policy with keep_last 0 (a run stored before retention existed) keeps every model.
bool KeepsModel(uint32_t round, uint32_t completed, const wire::v1::RetentionConfig& policy,
                absl::Span<const uint32_t> pinned, bool archived);

// The rounds of `stored` (rounds with a model) that KeepsModel drops.
std::vector<uint32_t> ModelsToDelete(absl::Span<const uint32_t> stored, uint32_t completed,
                                     const wire::v1::RetentionConfig& policy,
                                     absl::Span<const uint32_t> pinned, bool archived);

// INVALID_ARGUMENT naming the flag when a coordinator default is out of range
// (keep_last >= 1; both at most the largest round number).
absl::Status ValidateRetentionDefaults(const wire::v1::RetentionConfig& policy);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_RUN_RETENTION_H_

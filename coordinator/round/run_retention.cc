#include "coordinator/round/run_retention.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tessera::coordinator {
namespace {
// The largest round the storage keys can hold (docs/storage_format.md).
constexpr uint32_t kMaxRound = 99999999;
}  // namespace

bool KeepsModel(uint32_t round, uint32_t completed, const wire::v1::RetentionConfig& policy,
                absl::Span<const uint32_t> pinned, bool archived) {
  if (round == completed) return true;
  if (std::find(pinned.begin(), pinned.end(), round) != pinned.end()) return true;
  if (archived) return false;
  if (policy.keep_last() == 0) return true;
  if (round == 0) return true;
  if (round <= completed && completed - round < policy.keep_last()) return true;
  return policy.keep_every() > 0 && round % policy.keep_every() == 0;
}

std::vector<uint32_t> ModelsToDelete(absl::Span<const uint32_t> stored, uint32_t completed,
                                     const wire::v1::RetentionConfig& policy,
                                     absl::Span<const uint32_t> pinned, bool archived) {
  std::vector<uint32_t> out;
  for (uint32_t round : stored) {
    if (!KeepsModel(round, completed, policy, pinned, archived)) out.push_back(round);
  }
  return out;
}

absl::Status ValidateRetentionDefaults(const wire::v1::RetentionConfig& policy) {
  if (policy.keep_last() < 1 || policy.keep_last() > kMaxRound) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--retain-last must be in [1, ", kMaxRound, "], got ", policy.keep_last()));
  }
  if (policy.keep_every() > kMaxRound) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--retain-every must be in [0, ", kMaxRound, "], got ", policy.keep_every()));
  }
  return absl::OkStatus();
}

}  // namespace tessera::coordinator

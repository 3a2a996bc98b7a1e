#include "coordinator/state/storage_keys.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace tessera {
namespace coordinator {
namespace state_internal {

absl::Status ValidateId(absl::string_view what, absl::string_view id) {
  if (id.empty())
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (id.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is ", id.size(), " bytes; the limit is ", kMaxIdBytes));
  }
  for (char c : id) {
    if (c == '/' || absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " \"", absl::CEscape(id),
                       "\" contains '/' or a control character"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRoundAttempt(uint32_t round, uint32_t attempt) {
  if (round > kMaxRound) {
    return absl::InvalidArgumentError(
        absl::StrCat("round ", round, " is over the limit ", kMaxRound));
  }
  if (attempt > kMaxAttempt) {
    return absl::InvalidArgumentError(
        absl::StrCat("attempt ", attempt, " is over the limit ", kMaxAttempt));
  }
  return absl::OkStatus();
}

std::string RunKey(absl::string_view run_id) {
  return absl::StrCat("run/", run_id);
}

std::string RunOrderKey(uint64_t seq) {
  return absl::StrFormat("%s%020u", kRunOrderPrefix, seq);
}

bool ParseRunOrderKey(absl::string_view key, uint64_t* seq) {
  if (!absl::ConsumePrefix(&key, kRunOrderPrefix)) return false;
  return key.size() == 20 && absl::SimpleAtoi(key, seq);
}

std::string RoundPrefix(absl::string_view run_id) {
  return absl::StrCat("round/", run_id, "/");
}

std::string RoundKey(absl::string_view run_id, uint32_t round,
                     uint32_t attempt) {
  return absl::StrFormat("%s%08u/%04u", RoundPrefix(run_id), round, attempt);
}

std::string RunModelsPrefix(absl::string_view run_id) {
  return absl::StrCat("model/", run_id, "/");
}

std::string ModelPrefix(absl::string_view run_id, uint32_t round) {
  return absl::StrFormat("%s%08u/", RunModelsPrefix(run_id), round);
}

bool ParseModelRound(absl::string_view run_id, absl::string_view key, uint32_t* round) {
  const std::string prefix = RunModelsPrefix(run_id);
  if (!absl::ConsumePrefix(&key, prefix) || key.size() < 9 || key[8] != '/') return false;
  return absl::SimpleAtoi(key.substr(0, 8), round);
}

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(end.back() + 1);
  return end;
}

std::string ModelManifestKey(absl::string_view run_id, uint32_t round) {
  return absl::StrCat(ModelPrefix(run_id, round), "m");
}

std::string ModelTensorPrefix(absl::string_view run_id, uint32_t round) {
  return absl::StrCat(ModelPrefix(run_id, round), "t/");
}

std::string ModelTensorKey(absl::string_view run_id, uint32_t round,
                           size_t index) {
  return absl::StrFormat("%s%06u", ModelTensorPrefix(run_id, round), index);
}

std::string ModelTensorPieceKey(absl::string_view run_id, uint32_t round, size_t index,
                                uint32_t piece) {
  return absl::StrFormat("%s/%06u", ModelTensorKey(run_id, round, index), piece);
}

std::string ArtifactKey(absl::string_view run_id) {
  return absl::StrCat("artifact/", run_id);
}

std::string SecAggKey(absl::string_view run_id, absl::string_view session_id) {
  return absl::StrCat(SecAggRunPrefix(run_id), session_id);
}

std::string SecAggRunPrefix(absl::string_view run_id) {
  return absl::StrCat(kSecAggPrefix, run_id, "/");
}

std::string DeletedRunKey(absl::string_view run_id) {
  return absl::StrCat(kDeletedRunPrefix, run_id);
}

std::string ClientKey(absl::string_view name) {
  return absl::StrCat(kClientPrefix, name);
}

std::string LedgerKey(absl::string_view dataset) {
  return absl::StrCat(kLedgerPrefix, dataset);
}

std::string ChargePrefix(absl::string_view run_id) {
  return absl::StrCat(kChargePrefix, run_id, "/");
}

std::string ChargeKey(absl::string_view run_id, uint32_t round, uint32_t attempt) {
  return absl::StrFormat("%s%08u/%04u", ChargePrefix(run_id), round, attempt);
}

bool ParseChargeKey(absl::string_view run_id, absl::string_view key, uint32_t* round,
                    uint32_t* attempt) {
  const std::string prefix = ChargePrefix(run_id);
  if (!absl::ConsumePrefix(&key, prefix) || key.size() != 13 || key[8] != '/') return false;
  return absl::SimpleAtoi(key.substr(0, 8), round) && absl::SimpleAtoi(key.substr(9), attempt);
}

std::string ProvenanceKey(absl::string_view run_id) {
  return absl::StrCat(kProvenancePrefix, run_id);
}

std::string AuditKey(uint64_t seq) {
  return absl::StrFormat("%s%020u", kAuditPrefix, seq);
}

}  // namespace state_internal
}  // namespace coordinator
}  // namespace tessera

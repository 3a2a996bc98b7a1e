// Record-level DP-SGD at every site (record_privacy.h, docs/privacy.md).
#include "coordinator/round/record_privacy.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "coordinator/round/peer_text.h"
#include "core/base/status_macros.h"

namespace tessera::coordinator {
namespace {

constexpr size_t kMaxReasonBytes = 1024;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("site privacy report: ", field, " ", why));
}

// INVALID_ARGUMENT naming the first field a report cannot have.
absl::Status ValidateReport(const wire::v1::SitePrivacyReport& r) {
  if (!r.refused() && !(std::isfinite(r.epsilon()) && r.epsilon() >= 0)) {
    return Invalid("epsilon", absl::StrCat("must be finite and >= 0, got ", r.epsilon()));
  }
  // A site that states no budget refuses without one: a refusal may leave delta, budget and
  // accountant unset, and is still taken (the site is dropped either way).
  const bool bare_refusal = r.refused() && r.delta() == 0 && r.epsilon_budget() == 0 &&
                            r.accountant().empty();
  if (bare_refusal) {
    if (r.reason().empty()) return Invalid("reason", "must say why the site refused");
  } else if (!(r.delta() > 0 && r.delta() < 1)) {
    return Invalid("delta", absl::StrCat("must be in (0, 1), got ", r.delta()));
  }
  if (!bare_refusal && !(std::isfinite(r.epsilon_budget()) && r.epsilon_budget() > 0)) {
    return Invalid("epsilon_budget",
                   absl::StrCat("must be finite and > 0, got ", r.epsilon_budget()));
  }
  if (!(r.sampling_rate() >= 0 && r.sampling_rate() <= 1)) {
    return Invalid("sampling_rate", absl::StrCat("must be in [0, 1], got ", r.sampling_rate()));
  }
  if (!bare_refusal && r.accountant() != "rdp" && r.accountant() != "pld") {
    return Invalid("accountant", absl::StrCat("must be \"rdp\" or \"pld\", got \"",
                                              PeerText(r.accountant()), "\""));
  }
  if (r.reason().size() > kMaxReasonBytes) {
    return Invalid("reason", absl::StrCat("must be at most ", kMaxReasonBytes, " bytes, got ",
                                          r.reason().size()));
  }
  for (char c : r.reason()) {
    if (c < 0x20 || c > 0x7e) {
      return Invalid("reason", absl::StrCat("\"", PeerText(r.reason()),
                                            "\" may only use printable ASCII (0x20 to 0x7E)"));
    }
  }
  if (r.refused() && r.reason().empty()) return Invalid("reason", "must say why the site refused");
  return absl::OkStatus();
}

wire::v1::SitePrivacy SiteOf(absl::string_view client, const wire::v1::SitePrivacyReport& r) {
  wire::v1::SitePrivacy s;
  s.set_client(std::string(client));
  // A refusal may carry the epsilon the task would have reached (possibly infinite): only a
  // finite one is kept.
  if (std::isfinite(r.epsilon()) && r.epsilon() >= 0) s.set_epsilon(r.epsilon());
  s.set_delta(r.delta());
  s.set_epsilon_budget(r.epsilon_budget());
  s.set_steps(r.steps());
  s.set_sampling_rate(r.sampling_rate());
  s.set_refused(r.refused());
  s.set_reason(r.reason());
  s.set_accountant(r.accountant());
  return s;
}

void SortByClient(std::vector<wire::v1::SitePrivacy>& sites) {
  std::stable_sort(sites.begin(), sites.end(),
                   [](const auto& a, const auto& b) { return a.client() < b.client(); });
}

}  // namespace

void RecordPrivacy::RestoreRefusals(const std::vector<wire::v1::RoundSummary>& history) {
  NoIoMutexLock l(&mu_);
  for (const wire::v1::RoundSummary& h : history) {
    for (const wire::v1::SitePrivacy& site : h.site_privacy()) {
      if (site.refused()) exhausted_.insert(site.client());
    }
  }
}

std::vector<std::string> RecordPrivacy::Select(std::vector<std::string> candidates,
                                             size_t* exhausted) const {
  NoIoMutexLock l(&mu_);
  const size_t before = candidates.size();
  candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                  [&](const std::string& c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                    return exhausted_.count(c) > 0;
                                  }),
                   candidates.end());
  *exhausted = before - candidates.size();
  return candidates;
}

void RecordPrivacy::Dispatch(wire::v1::Task& task) const {
  if (task.type() != wire::v1::TRAIN || !config_.enabled()) return;
  *task.mutable_dp()->mutable_record() = config_;
}

void RecordPrivacy::BeginAttempt(uint32_t round, uint32_t attempt) {
  NoIoMutexLock l(&mu_);
  round_ = round;
  attempt_ = attempt;
  live_.clear();
}

absl::StatusOr<wire::v1::SitePrivacy> RecordPrivacy::Validate(
    absl::string_view client, const wire::v1::SitePrivacyReport& r) {
  TESSERA_RETURN_IF_ERROR(ValidateReport(r));
  return SiteOf(client, r);
}

void RecordPrivacy::Accept(uint32_t round, uint32_t attempt, const wire::v1::SitePrivacy& site) {
  NoIoMutexLock l(&mu_);
  if (round_ == round && attempt_ == attempt) {
    live_.push_back(site);
    SortByClient(live_);
  }
  if (site.refused()) exhausted_.insert(site.client());
}

void RecordPrivacy::Summarize(std::vector<wire::v1::SitePrivacy> sites,
                              wire::v1::RoundSummary* summary) {
  SortByClient(sites);
  summary->clear_site_privacy();
  for (wire::v1::SitePrivacy& s : sites) *summary->add_site_privacy() = std::move(s);
}

void RecordPrivacy::AddExhaustedClients(wire::v1::RunStatus& status) const {
  NoIoMutexLock l(&mu_);
  for (const std::string& c : exhausted_) status.add_budget_exhausted_clients(c);
}

void RecordPrivacy::AddLiveSites(wire::v1::RoundSummary& current) const {
  NoIoMutexLock l(&mu_);
  if (current.round() == round_ && current.attempt() == attempt_ &&
      current.site_privacy().empty()) {
    for (const auto& site : live_) *current.add_site_privacy() = site;
  }
}

}  // namespace tessera::coordinator

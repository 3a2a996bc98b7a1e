// Record-level DP-SGD at every site (docs/privacy.md, "Record-level DP-SGD"): the DP-SGD
// section of training tasks, and what each site reports about its own privacy budget before
// it trains. The coordinator does not account for record-level privacy itself (each site
// holds its own ledger); it shows what the sites report and stops selecting a site whose
// budget is spent.
#include <algorithm>
#include <cmath>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "coordinator/round/peer_text.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_internal.h"
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

void RunManager::AddRecordDpTask(const wire::v1::RunConfig& config, wire::v1::Task& task) {
  const wire::v1::RecordDpConfig& record = config.differential_privacy().record();
  if (task.type() != wire::v1::TRAIN || !record.enabled()) return;
  *task.mutable_dp()->mutable_record() = record;
}

void RunManager::BeginSitePrivacy(Run& run, const wire::v1::RoundSummary& summary) {
  NoIoMutexLock l(&run.mu);
  run.site_privacy.round = summary.round();
  run.site_privacy.attempt = summary.attempt();
  run.site_privacy.sites.clear();
}

void RunManager::TakeSitePrivacy(Round& round, wire::v1::RoundSummary* summary) {
  std::vector<wire::v1::SitePrivacy> sites;
  {
    absl::MutexLock l(&round.mu);
    sites = round.site_privacy;
  }
  SortByClient(sites);
  summary->clear_site_privacy();
  for (wire::v1::SitePrivacy& s : sites) *summary->add_site_privacy() = std::move(s);
}

absl::Status RunManager::ReportSitePrivacy(absl::string_view task_id, absl::string_view client,
                                           const wire::v1::SitePrivacyReport& report) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  if (task->task.type() != wire::v1::TRAIN) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " is not a training task; only training tasks have a "
                     "site privacy report"));
  }
  if (!task->task.dp().record().enabled()) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", task->task.run_id(), " does not use record-level DP; task ",
                     task_id, " takes no site privacy report"));
  }
  TESSERA_RETURN_IF_ERROR(ValidateReport(report));
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindRun(task->task.run_id()));
  const wire::v1::SitePrivacy site = SiteOf(client, report);
  Round& round = *task->round;
  {
    absl::MutexLock l(&round.mu);
    if (!round.open) {
      return absl::FailedPreconditionError(
          absl::StrCat("round ", round.number, " of run ", round.run_id, " is closed"));
    }
    if (task->privacy_reported) {
      return absl::AlreadyExistsError(
          absl::StrCat("task ", task_id, " already has a site privacy report"));
    }
    if (report.refused() && task->reported) {
      return absl::FailedPreconditionError(absl::StrCat(
          "task ", task_id, " was already answered; a refusal must come before training"));
    }
    task->privacy_reported = true;
    round.site_privacy.push_back(site);
  }
  {
    NoIoMutexLock l(&run->mu);
    Run::LiveSitePrivacy& live = run->site_privacy;
    if (live.round == round.number && live.attempt == round.attempt) {
      live.sites.push_back(site);
      SortByClient(live.sites);
    }
    if (report.refused()) run->budget_exhausted.insert(std::string(client));
  }
  if (report.refused()) {
    LOG(WARNING) << "run " << run->id << " round " << round.number << ": client " << client
                 << " refused task " << task_id << " (its record-level privacy budget is "
                 << "spent; it is no longer selected): " << PeerText(report.reason());
    const std::string why = absl::StrCat("refused: ", report.reason());
    if (round.secagg != nullptr) {
      {
        absl::MutexLock l(&round.mu);
        task->reported = true;  // answered: never re-sent, never abandoned again
      }
      if (absl::Status s = round.secagg->Withdraw(task->index, absl::ResourceExhaustedError(why));
          !s.ok()) {
        LOG(WARNING) << "cannot withdraw " << client << " from the secure aggregation round: "
                     << s;
      }
    } else if (absl::Status s = AbandonTask(task_id, client, why); !s.ok()) {
      LOG(WARNING) << "cannot drop " << client << " from round " << round.number << ": " << s;
    }
  } else {
    LOG(INFO) << "run " << run->id << " round " << round.number << ": client " << client
              << " reports record-level epsilon " << site.epsilon() << " of "
              << site.epsilon_budget() << " (delta " << site.delta() << ", "
              << site.accountant() << ")";
  }
  Notify(run);
  return absl::OkStatus();
}

}  // namespace tessera::coordinator

#include "client/runtime/site_ledger.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "privacy/dp/pld_accountant.h"
#include "privacy/dp/rdp_accountant.h"

namespace tessera {
namespace {

constexpr char kFormat[] = "tessera-site-ledger/1";

absl::Status CheckEntry(const SiteLedgerEntry& e) {
  if (!(e.sampling_rate > 0 && e.sampling_rate <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("site ledger: sampling rate must be in (0, 1], got ", e.sampling_rate));
  }
  if (!(e.noise_multiplier > 0 && std::isfinite(e.noise_multiplier))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "site ledger: noise multiplier must be finite and > 0, got ", e.noise_multiplier));
  }
  if (e.steps == 0) return absl::InvalidArgumentError("site ledger: steps must be > 0");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SiteLedgerEntry>> ParseEntries(const std::string& path,
                                                          const std::string& text,
                                                          const std::string& dataset) {
  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(
        "privacy ledger ", path, " is unreadable (", why,
        "); it is never reset automatically: restore it from a backup, or move it away "
        "only if this dataset has never been trained on with DP-SGD"));
  };
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return corrupt("not a JSON object");
  if (doc.value("format", "") != kFormat) return corrupt(absl::StrCat("format is not ", kFormat));
  if (!doc.contains("dataset") || !doc["dataset"].is_string()) return corrupt("no dataset");
  if (doc["dataset"].get<std::string>() != dataset) {
    return absl::FailedPreconditionError(absl::StrCat(
        "privacy ledger ", path, " belongs to dataset \"", doc["dataset"].get<std::string>(),
        "\", not \"", dataset, "\""));
  }
  if (!doc.contains("entries") || !doc["entries"].is_array()) return corrupt("no entries");
  std::vector<SiteLedgerEntry> out;
  for (const nlohmann::json& j : doc["entries"]) {
    if (!j.is_object() || !j.contains("q") || !j["q"].is_number() ||
        !j.contains("noise_multiplier") || !j["noise_multiplier"].is_number() ||
        !j.contains("steps") || !j["steps"].is_number_unsigned()) {
      return corrupt(absl::StrCat("entry ", out.size(), " lacks q, noise_multiplier or steps"));
    }
    SiteLedgerEntry e;
    e.sampling_rate = j["q"].get<double>();
    e.noise_multiplier = j["noise_multiplier"].get<double>();
    e.steps = j["steps"].get<uint64_t>();
    e.run_id = j.value("run", "");
    e.round = j.value("round", 0u);
    e.task_id = j.value("task", "");
    e.unix_ms = j.value("unix_ms", int64_t{0});
    if (!CheckEntry(e).ok()) return corrupt(absl::StrCat("entry ", out.size(), " is invalid"));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

absl::StatusOr<SiteAccountant> ParseSiteAccountant(absl::string_view name) {
  if (name == "rdp") return SiteAccountant::kRdp;
  if (name == "pld") return SiteAccountant::kPld;
  return absl::InvalidArgumentError(
      absl::StrCat("--privacy-accountant: \"", name, "\" (want rdp or pld)"));
}

absl::string_view SiteAccountantName(SiteAccountant accountant) {
  return accountant == SiteAccountant::kPld ? "pld" : "rdp";
}

absl::StatusOr<SiteLedger> SiteLedger::Open(std::string path, std::string dataset,
                                            PrivacyBudget budget, uint64_t num_examples,
                                            SiteAccountant accountant) {
  if (num_examples == 0) {
    return absl::InvalidArgumentError("site ledger: the dataset has no examples");
  }
  if (!(budget.delta < 1.0 / static_cast<double>(num_examples))) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--privacy-budget: delta %g must be below 1 / (local examples) = 1/%d = %g: a delta "
        "that large allows releasing one record outright",
        budget.delta, num_examples, 1.0 / static_cast<double>(num_examples)));
  }
  if (dataset.empty()) return absl::InvalidArgumentError("site ledger: empty dataset name");
  SiteLedger ledger;
  ledger.path_ = std::move(path);
  ledger.dataset_ = std::move(dataset);
  ledger.budget_ = budget;
  ledger.accountant_ = accountant;
  if (ledger.path_.empty()) return ledger;  // in memory
  // One process per ledger: two that each kept their own copy would overwrite each other's
  // charges. The lock lives as long as the ledger (and the process).
  const std::filesystem::path parent = std::filesystem::path(ledger.path_).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  const std::string lock_path = ledger.path_ + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "privacy ledger ", ledger.path_, ": cannot open its lock ", lock_path, ": ",
        std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "privacy ledger ", ledger.path_, " is in use by another process (", lock_path,
        "): one client per dataset ledger"));
  }
  ledger.lock_ = std::shared_ptr<int>(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  // Fail closed: a ledger that exists but cannot be read is an error, never an empty ledger.
  const bool exists = std::filesystem::exists(ledger.path_, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat("privacy ledger ", ledger.path_,
                                                      ": cannot check it: ", ec.message()));
  }
  if (exists) {
    TESSERA_ASSIGN_OR_RETURN(std::string text, ReadFileToString(ledger.path_));
    TESSERA_ASSIGN_OR_RETURN(ledger.entries_,
                             ParseEntries(ledger.path_, text, ledger.dataset_));
  }
  return ledger;
}

absl::StatusOr<double> SiteLedger::EpsilonOf(const SiteLedgerEntry* extra) const {
  // Entries of the same mechanism (q, z) compose by adding their steps: one RDP curve per
  // distinct mechanism, however many tasks the ledger holds.
  std::map<std::pair<double, double>, uint64_t> steps_by_mechanism;
  auto add = [&](const SiteLedgerEntry& e) {
    steps_by_mechanism[{e.sampling_rate, e.noise_multiplier}] += e.steps;
  };
  for (const SiteLedgerEntry& e : entries_) add(e);
  if (extra != nullptr) add(*extra);
  if (steps_by_mechanism.empty()) return 0.0;
  const std::vector<double> orders = dp::DefaultOrders();
  std::vector<double> rdp(orders.size(), 0.0);
  for (const auto& [mechanism, steps] : steps_by_mechanism) {
    TESSERA_ASSIGN_OR_RETURN(std::vector<double> step,
                             dp::SampledGaussianRdp(mechanism.first, mechanism.second, orders));
    for (size_t i = 0; i < orders.size(); ++i) rdp[i] += step[i] * static_cast<double>(steps);
  }
  TESSERA_ASSIGN_OR_RETURN(dp::EpsilonResult r, dp::EpsilonFromRdp(orders, rdp, budget_.delta,
                                                                    dp::Conversion::kImproved));
  double epsilon = r.epsilon;
  if (accountant_ == SiteAccountant::kPld && steps_by_mechanism.size() == 1) {
    const auto& [mechanism, steps] = *steps_by_mechanism.begin();
    TESSERA_ASSIGN_OR_RETURN(
        double pld, dp::PldEpsilon(mechanism.first, mechanism.second, steps, budget_.delta));
    epsilon = std::min(epsilon, pld);  // both bound the true epsilon from above
  }
  return epsilon;
}

absl::StatusOr<double> SiteLedger::Epsilon() const { return EpsilonOf(nullptr); }

bool SiteLedger::HasTask(absl::string_view task_id) const {
  for (const SiteLedgerEntry& e : entries_) {
    if (!e.task_id.empty() && e.task_id == task_id) return true;
  }
  return false;
}

absl::StatusOr<SiteLedger::Plan> SiteLedger::PlanTask(const SiteLedgerEntry& planned) const {
  TESSERA_RETURN_IF_ERROR(CheckEntry(planned));
  Plan plan;
  TESSERA_ASSIGN_OR_RETURN(plan.epsilon_before, EpsilonOf(nullptr));
  TESSERA_ASSIGN_OR_RETURN(plan.epsilon_after, EpsilonOf(&planned));
  plan.allowed = plan.epsilon_after <= budget_.epsilon;
  if (!plan.allowed) {
    plan.reason = absl::StrFormat(
        "privacy budget of dataset \"%s\" exhausted: this task's %d DP-SGD steps (q=%.4g, "
        "z=%.4g) would take its epsilon from %.4f to %.4f, over the site's budget of %g "
        "(delta %g)",
        dataset_, planned.steps, planned.sampling_rate, planned.noise_multiplier,
        plan.epsilon_before, plan.epsilon_after, budget_.epsilon, budget_.delta);
  }
  return plan;
}

absl::Status SiteLedger::Charge(const SiteLedgerEntry& entry) {
  TESSERA_RETURN_IF_ERROR(CheckEntry(entry));
  std::vector<SiteLedgerEntry> next = entries_;
  next.push_back(entry);
  if (path_.empty()) {  // in memory (the simulator's virtual clients)
    entries_ = std::move(next);
    return absl::OkStatus();
  }
  nlohmann::json doc;
  doc["format"] = kFormat;
  doc["dataset"] = dataset_;
  doc["entries"] = nlohmann::json::array();
  for (const SiteLedgerEntry& e : next) {
    doc["entries"].push_back({{"q", e.sampling_rate},
                              {"noise_multiplier", e.noise_multiplier},
                              {"steps", e.steps},
                              {"run", e.run_id},
                              {"round", e.round},
                              {"task", e.task_id},
                              {"unix_ms", e.unix_ms}});
  }
  TESSERA_RETURN_IF_ERROR(
      WriteFileAtomically(path_, doc.dump(1) + "\n", 0600, /*replace=*/true));
  entries_ = std::move(next);
  return absl::OkStatus();
}

}  // namespace tessera

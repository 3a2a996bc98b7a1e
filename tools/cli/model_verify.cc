// File: model_verify.cc
// `tessera model verify`: reads an export folder and prints one line per check
// (model_verify.h).
#include "tools/cli/model_verify.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <system_error>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "core/crypto/sha256.h"
#include "tools/cli/commands.h"
#include "tools/cli/errors.h"
#include "tools/cli/model_export.h"

namespace tessera::cli {
namespace {

absl::StatusOr<std::string> ReadNamed(const std::string& path, absl::string_view what) {
  absl::StatusOr<std::string> bytes = ReadFileToString(path);
  if (!bytes.ok()) {
    return absl::NotFoundError(absl::StrCat(what, ": ", bytes.status().message()));
  }
  return bytes;
}

// The file name at `member` of the bill of materials: never a path out of its folder.
absl::StatusOr<std::string> FileNamed(absl::string_view bom, absl::string_view member,
                                      absl::string_view bom_path) {
  absl::StatusOr<std::string> name = JsonStringMember(bom, member);
  if (!name.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(bom_path, ": ", name.status().message()));
  }
  if (name->empty() || *name == "." || *name == ".." ||
      name->find_first_of("/\\") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(bom_path, ": ", member, " \"", *name,
                                                   "\" is not a file name in its folder"));
  }
  return name;
}

int Unusable(absl::string_view why) {
  std::cerr << "tessera: model verify: " << why << "\n";
  return kVerifyUnusable;
}

}  // namespace

absl::StatusOr<ExportOnDisk> ReadExport(const std::string& path) {
  std::error_code ec;
  ExportOnDisk out;
  std::filesystem::path dir;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(
        absl::StrCat(path, ": no such export folder or bill of materials"));
  }
  if (std::filesystem::is_directory(path, ec)) {
    dir = path;
    out.bom_path = (dir / std::string(kBillOfMaterialsFileName)).string();
  } else {
    dir = std::filesystem::path(path).parent_path();
    out.bom_path = path;
  }
  TESSERA_ASSIGN_OR_RETURN(out.files.bill_of_materials,
                           ReadNamed(out.bom_path, "bill of materials"));
  TESSERA_ASSIGN_OR_RETURN(const std::string weights_name,
                           FileNamed(out.files.bill_of_materials, "model.weights.file",
                                     out.bom_path));
  // Without a model_card.file member: README.md.
  absl::StatusOr<std::string> card_name =
      FileNamed(out.files.bill_of_materials, "model_card.file", out.bom_path);
  if (!card_name.ok()) card_name = std::string(kModelCardFileName);
  out.weights_path = (dir / weights_name).string();
  out.model_card_path = (dir / *card_name).string();
  TESSERA_ASSIGN_OR_RETURN(out.files.weights, ReadNamed(out.weights_path, "weights"));
  TESSERA_ASSIGN_OR_RETURN(out.files.model_card, ReadNamed(out.model_card_path, "model card"));
  return out;
}

absl::StatusOr<provenance::ExportVerification> VerifyExportAt(const std::string& path,
                                                              absl::string_view ca_pem) {
  TESSERA_ASSIGN_OR_RETURN(ExportOnDisk on_disk, ReadExport(path));
  absl::StatusOr<provenance::ExportVerification> v =
      provenance::VerifyExport(on_disk.files, ca_pem);
  if (!v.ok()) {
    return absl::Status(v.status().code(),
                        absl::StrCat(on_disk.bom_path, ": ", v.status().message()));
  }
  return v;
}

provenance::ExportCheck CoordinatorCheck(const provenance::ExportVerification& v,
                                         const wire::v1::RunStatus& status) {
  provenance::ExportCheck check{"coordinator", false, ""};
  if (v.round == 0) {
    check.ok = true;
    check.detail = absl::StrCat("run ", v.run_id, " exists (round 0 is its initial model)");
    return check;
  }
  const wire::v1::RoundSummary* committed = nullptr;
  for (const wire::v1::RoundSummary& r : status.rounds()) {
    if (r.round() == v.round && r.state() == wire::v1::ROUND_COMPLETED) committed = &r;
  }
  if (committed == nullptr) {
    check.detail = absl::StrCat("run ", v.run_id, " has no completed round ", v.round);
    return check;
  }
  const std::string found = crypto::HexEncode(committed->model_sha256());
  check.ok = found == absl::AsciiStrToLower(v.model_sha256_hex);
  check.detail = check.ok
                     ? absl::StrCat("run ", v.run_id, " round ", v.round,
                                    " committed this model (", found.substr(0, 16), "..)")
                     : absl::StrCat("run ", v.run_id, " round ", v.round, " committed ", found,
                                    ", the bill of materials names ", v.model_sha256_hex);
  return check;
}

std::string CheckLine(const provenance::ExportCheck& check) {
  return absl::StrFormat("%-4s %s  %s", check.ok ? "OK" : "FAIL", check.name, check.detail);
}

std::string VerificationSummary(const std::vector<provenance::ExportCheck>& checks,
                                bool ca_checked) {
  const auto failed = std::count_if(checks.begin(), checks.end(),
                                    [](const provenance::ExportCheck& c) { return !c.ok; });
  if (failed != 0) {
    return absl::StrCat("verification FAILED: ", failed, " of ", checks.size(), " checks");
  }
  if (!ca_checked) {
    return absl::StrCat("UNVERIFIED: all ", checks.size(),
                        " checks passed, but no --ca was given, so nothing ties the signer to "
                        "the federation (anyone can re-sign with a key of their own)");
  }
  return absl::StrCat("verified: all ", checks.size(), " checks passed");
}

std::string VerificationJson(const provenance::ExportVerification& v, bool ca_checked) {
  nlohmann::json checks = nlohmann::json::array();
  bool ok = true;
  for (const provenance::ExportCheck& c : v.checks) {
    checks.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
    ok = ok && c.ok;
  }
  nlohmann::json j = {{"ok", ok && ca_checked},
                      {"result", !ok ? "failed" : ca_checked ? "verified" : "unverified"},
                      {"run_id", v.run_id},
                      {"round", v.round},
                      {"model_sha256", v.model_sha256_hex},
                      {"ca_checked", ca_checked},
                      {"checks", checks}};
  if (!v.signer.fingerprint_sha256_hex.empty()) {
    j["signer"] = {{"common_name", v.signer.common_name},
                   {"organization", v.signer.organization},
                   {"certified", v.signer.certified},
                   {"fingerprint_sha256", v.signer.fingerprint_sha256_hex}};
  }
  return j.dump();
}

int VerifyModel(const ConnectionOptions& c, const OutputOptions& out, const std::string& path,
                bool online) {
  std::string ca_pem;
  if (!c.ca_cert_path.empty()) {
    absl::StatusOr<std::string> ca = ReadFileToString(c.ca_cert_path);
    if (!ca.ok()) return Unusable(absl::StrCat("--ca: ", ca.status().message()));
    ca_pem = *std::move(ca);
  }
  absl::StatusOr<provenance::ExportVerification> v = VerifyExportAt(path, ca_pem);
  if (!v.ok()) return Unusable(v.status().message());
  if (online) {
    wire::v1::RunStatus status;
    grpc::Status s;
    absl::StatusOr<std::unique_ptr<wire::v1::Control::Stub>> stub = Connect(c);
    if (stub.ok()) {
      wire::v1::RunRef ref;
      ref.set_run_id(v->run_id);
      auto ctx = UnaryContext(c);
      s = (*stub)->GetRunStatus(ctx.get(), ref, &status);
    } else {
      s = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(stub.status().message()));
    }
    v->checks.push_back(s.ok() ? CoordinatorCheck(*v, status)
                               : provenance::ExportCheck{
                                     "coordinator", false,
                                     absl::StrCat("cannot ask about run ", v->run_id, ": ",
                                                  s.error_message())});
  }
  const bool ok = std::all_of(v->checks.begin(), v->checks.end(),
                              [](const provenance::ExportCheck& c) { return c.ok; });
  if (out.json) {
    std::cout << VerificationJson(*v, !ca_pem.empty()) << "\n";
  } else {
    std::cout << "run " << v->run_id << ", round " << v->round << "\n";
    for (const provenance::ExportCheck& check : v->checks) std::cout << CheckLine(check) << "\n";
    std::cout << VerificationSummary(v->checks, !ca_pem.empty()) << "\n";
  }
  if (!ok) return kVerifyFailed;
  return ca_pem.empty() ? kVerifyUnverified : kVerifyPassed;
}

}  // namespace tessera::cli

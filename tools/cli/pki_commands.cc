// File: pki_commands.cc
// `tessera pki ...` (pki_commands.h): the CA folder on the operator's machine.
#include "tools/cli/pki_commands.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <ctime>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/base/file.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/pki.h"

namespace tessera::cli {
namespace {

int Fail(absl::string_view what, const absl::Status& status) {
  std::cerr << "tessera pki " << what << ": " << status.message() << "\n";
  return 1;
}

std::string CaKeyPath(const PkiArgs& a) { return a.dir + "/ca.key"; }
std::string CaCertPath(const PkiArgs& a) { return a.dir + "/ca.pem"; }
std::string CrlPath(const PkiArgs& a) { return a.dir + "/crl.pem"; }
std::string IssuedDir(const PkiArgs& a) { return a.dir + "/issued"; }

absl::Status RequireDir(const std::string& flag, const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, " is required"));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat(flag, " ", dir, " is not a folder"));
  }
  return absl::OkStatus();
}

// mkdir -p; the last component gets `mode` when it is created here.
absl::Status MakeDir(const std::string& dir, unsigned mode) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return absl::OkStatus();
  std::filesystem::create_directories(dir, ec);
  if (ec || ::chmod(dir.c_str(), mode) != 0) {
    return absl::InternalError(absl::StrCat("cannot create ", dir, ": ",
                                            ec ? ec.message() : std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<crypto::KeyAndCertificate> LoadCa(const PkiArgs& a) {
  if (absl::Status s = RequireDir("--dir", a.dir); !s.ok()) return s;
  absl::StatusOr<std::string> key = ReadFileToString(CaKeyPath(a));
  absl::StatusOr<std::string> cert = ReadFileToString(CaCertPath(a));
  if (!key.ok() || !cert.ok()) {
    return absl::NotFoundError(
        absl::StrCat("--dir ", a.dir, " holds no CA (ca.pem, ca.key): run tessera pki init"));
  }
  return crypto::KeyAndCertificate{*std::move(key), *std::move(cert)};
}

// The CRL in force, or an empty list numbered 0 when there is none yet.
absl::StatusOr<crypto::RevocationList> LoadCrl(const PkiArgs& a,
                                               const crypto::KeyAndCertificate& ca) {
  absl::StatusOr<std::string> pem = ReadFileToString(CrlPath(a));
  if (!pem.ok()) return crypto::RevocationList{};
  absl::StatusOr<crypto::RevocationList> list =
      crypto::ReadRevocationList(*pem, ca.certificate_pem);
  if (!list.ok()) {
    return absl::Status(list.status().code(),
                        absl::StrCat(CrlPath(a), ": ", list.status().message()));
  }
  return list;
}

absl::Status WriteCrl(const PkiArgs& a, const crypto::KeyAndCertificate& ca,
                      crypto::RevocationList list) {
  ++list.number;
  absl::StatusOr<std::string> pem = crypto::CreateRevocationList(ca, list, a.crl_days);
  if (!pem.ok()) return pem.status();
  return WriteFileAtomically(CrlPath(a), *pem, 0644, /*replace=*/true);
}

struct Issued {
  crypto::CertificateIdentity id;
  std::string path;
};

absl::StatusOr<std::vector<Issued>> ListIssued(const PkiArgs& a) {
  std::vector<Issued> out;
  DIR* d = ::opendir(IssuedDir(a).c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string file = e->d_name;
    if (file.size() < 5 || file.substr(file.size() - 4) != ".pem") continue;
    const std::string path = IssuedDir(a) + "/" + file;
    absl::StatusOr<std::string> pem = ReadFileToString(path);
    absl::StatusOr<crypto::CertificateIdentity> id =
        pem.ok() ? crypto::ParseCertificateIdentity(*pem) : pem.status();
    if (!id.ok()) {
      ::closedir(d);
      return absl::DataLossError(absl::StrCat(path, ": ", id.status().message()));
    }
    out.push_back({*std::move(id), path});
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const Issued& x, const Issued& y) {
    return std::tie(x.id.common_name, x.id.not_after_unix) <
           std::tie(y.id.common_name, y.id.not_after_unix);
  });
  return out;
}

// Writes OUT/NAME.pem (and the key, when made here) and the CA's copy issued/<serial>.pem.
absl::Status SaveIssued(const PkiArgs& a, const std::string& name, const std::string& cert,
                        const std::string* key) {
  const std::string out = a.out.empty() ? a.dir : a.out;
  if (absl::Status s = MakeDir(out, 0755); !s.ok()) return s;
  absl::StatusOr<crypto::CertificateIdentity> id = crypto::ParseCertificateIdentity(cert);
  if (!id.ok()) return id.status();
  // Check both targets first, so a refusal leaves nothing half-written.
  struct stat st {};
  for (const std::string& p : {out + "/" + name + ".pem", out + "/" + name + ".key"}) {
    if (!a.force && (key != nullptr || p.ends_with(".pem")) && ::stat(p.c_str(), &st) == 0) {
      return absl::AlreadyExistsError(
          absl::StrCat(p, " exists; pass --force to replace it (certificate rotation)"));
    }
  }
  if (absl::Status s = MakeDir(IssuedDir(a), 0755); !s.ok()) return s;
  if (absl::Status s = WriteFileAtomically(IssuedDir(a) + "/" + id->serial_hex + ".pem", cert,
                                           0644, false);
      !s.ok()) {
    return s;
  }
  // Key first, then certificate: a watcher that reads between the two renames sees a
  // mismatched pair for at most one refresh period.
  if (key != nullptr) {
    if (absl::Status s = WriteFileAtomically(out + "/" + name + ".key", *key, 0600, a.force);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = WriteFileAtomically(out + "/" + name + ".pem", cert, 0644, a.force);
      !s.ok()) {
    return s;
  }
  std::cout << "issued " << name << " (serial " << id->serial_hex << ", OU "
            << id->organizational_unit << ", expires "
            << absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(id->not_after_unix),
                                absl::UTCTimeZone())
            << "): " << out << "/" << name << ".pem" << (key ? " and .key" : "") << "\n";
  return absl::OkStatus();
}

// OK unless the CA's record (issued/) holds a certificate for `name` (compared ignoring case,
// so "Hospital-A" cannot shadow "hospital-a") that is still live: not expired and not on the
// CRL. With --force (rotation) the operator replaces it knowingly. ALREADY_EXISTS names it.
absl::Status CheckNameNotIssued(const PkiArgs& a, const crypto::KeyAndCertificate& ca,
                                const std::string& name) {
  if (a.force) return absl::OkStatus();
  absl::StatusOr<std::vector<Issued>> issued = ListIssued(a);
  if (!issued.ok()) return issued.status();
  absl::StatusOr<crypto::RevocationList> crl = LoadCrl(a, ca);
  if (!crl.ok()) return crl.status();
  std::set<std::string> revoked;
  for (const crypto::RevokedCertificate& r : crl->revoked) revoked.insert(r.serial_hex);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (const Issued& i : *issued) {
    if (!absl::EqualsIgnoreCase(i.id.common_name, name) || i.id.not_after_unix <= now ||
        revoked.count(i.id.serial_hex) > 0) {
      continue;
    }
    return absl::AlreadyExistsError(absl::StrCat(
        "the CA already issued \"", i.id.common_name, "\" (OU ", i.id.organizational_unit,
        ", O \"", i.id.organization, "\", serial ", i.id.serial_hex,
        "), still valid: a second certificate for the name would let its holder act as that "
        "member. Revoke it first (tessera pki revoke --serial ", i.id.serial_hex,
        ") or pass --force to rotate it"));
  }
  return absl::OkStatus();
}

// The audit event of a certificate just issued (public facts only).
void AddIssuedEvent(const std::string& name, crypto::CertificateRole role,
                    const std::string& cert, std::vector<PkiEvent>* events) {
  if (events == nullptr) return;
  PkiEvent e{"certificate.issued",
             {{"name", name}, {"role", std::string(crypto::CertificateRoleName(role))}}};
  if (absl::StatusOr<crypto::CertificateIdentity> id = crypto::ParseCertificateIdentity(cert);
      id.ok()) {
    e.details["serial"] = id->serial_hex;
    e.details["not_after"] = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                                              absl::FromUnixSeconds(id->not_after_unix),
                                              absl::UTCTimeZone());
  }
  events->push_back(std::move(e));
}

}  // namespace

int PkiInit(const PkiArgs& a) {
  if (a.dir.empty()) return Fail("init", absl::InvalidArgumentError("--dir is required"));
  if (absl::Status s = MakeDir(a.dir, 0700); !s.ok()) return Fail("init", s);
  struct stat st {};
  if (::stat(CaKeyPath(a).c_str(), &st) == 0) {
    return Fail("init", absl::AlreadyExistsError(absl::StrCat(
                            a.dir, " already holds a CA (ca.key); not replacing it")));
  }
  const std::string org = a.organization.empty() ? "Tessera federation" : a.organization;
  absl::StatusOr<crypto::KeyAndCertificate> ca = crypto::CreateCertificateAuthority(
      org, a.days > 0 ? a.days : 3650);
  if (!ca.ok()) return Fail("init", ca.status());
  if (absl::Status s = WriteFileAtomically(CaKeyPath(a), ca->key_pem, 0600, false); !s.ok()) {
    return Fail("init", s);
  }
  if (absl::Status s = WriteFileAtomically(CaCertPath(a), ca->certificate_pem, 0644, false);
      !s.ok()) {
    return Fail("init", s);
  }
  if (absl::Status s = WriteCrl(a, *ca, crypto::RevocationList{}); !s.ok()) {
    return Fail("init", s);
  }
  std::cout << "created the federation CA \"" << org << "\" in " << a.dir
            << " (ca.pem; ca.key is secret, mode 0600; crl.pem)\n";
  return 0;
}

int PkiIssue(const PkiArgs& a, std::vector<PkiEvent>* events) {
  absl::StatusOr<crypto::KeyAndCertificate> ca = LoadCa(a);
  if (!ca.ok()) return Fail("issue", ca.status());
  absl::StatusOr<crypto::CertificateRole> role = crypto::ParseCertificateRole(a.role);
  if (!role.ok()) return Fail("issue", absl::InvalidArgumentError(
                                           absl::StrCat("--role: ", role.status().message())));
  crypto::IssueOptions o{*role, a.name, a.organization, a.san, a.days > 0 ? a.days : 365};
  if (*role == crypto::CertificateRole::kCoordinator && o.subject_alt_names.empty() &&
      !a.name.empty()) {
    o.subject_alt_names = {"DNS:" + a.name, "DNS:localhost", "IP:127.0.0.1"};
  }
  if (!a.csr.empty()) {
    absl::StatusOr<std::string> csr = ReadFileToString(a.csr);
    if (!csr.ok()) return Fail("issue", absl::NotFoundError(absl::StrCat("--csr: ", csr.status().message())));
    absl::StatusOr<crypto::RequestSubject> subject = crypto::ReadCertificateRequest(*csr);
    if (!subject.ok()) return Fail("issue", absl::InvalidArgumentError(absl::StrCat("--csr ", a.csr, ": ", subject.status().message())));
    // The organization is the operator's decision: a partner's request may claim any O.
    if (a.organization.empty()) {
      return Fail("issue", absl::InvalidArgumentError(absl::StrCat(
                               "--org is required with --csr: the certificate's organization "
                               "is decided by the operator, not by the request (it asks for O "
                               "\"", subject->organization, "\")")));
    }
    const std::string name = a.name.empty() ? subject->common_name : a.name;
    if (absl::Status s = crypto::ValidateMemberName(name); !s.ok()) {
      return Fail("issue", absl::InvalidArgumentError(
                               absl::StrCat(a.name.empty() ? "--csr CN: " : "--name: ",
                                            s.message())));
    }
    if (absl::Status s = CheckNameNotIssued(a, *ca, name); !s.ok()) return Fail("issue", s);
    absl::StatusOr<std::string> cert = crypto::IssueCertificateForRequest(*ca, *csr, o);
    if (!cert.ok()) return Fail("issue", cert.status());
    absl::Status s = SaveIssued(a, name, *cert, nullptr);
    if (!s.ok()) return Fail("issue", s);
    AddIssuedEvent(name, *role, *cert, events);
    return 0;
  }
  if (a.name.empty()) {
    return Fail("issue", absl::InvalidArgumentError("--name (or --csr) is required"));
  }
  if (absl::Status s = CheckNameNotIssued(a, *ca, a.name); !s.ok()) return Fail("issue", s);
  absl::StatusOr<std::string> key = crypto::GeneratePrivateKey();
  if (!key.ok()) return Fail("issue", key.status());
  absl::StatusOr<std::string> cert = crypto::IssueCertificate(*ca, *key, o);
  if (!cert.ok()) return Fail("issue", cert.status());
  absl::Status s = SaveIssued(a, a.name, *cert, &*key);
  if (!s.ok()) return Fail("issue", s);
  AddIssuedEvent(a.name, *role, *cert, events);
  return 0;
}

int PkiCsr(const PkiArgs& a) {
  if (a.out.empty()) return Fail("csr", absl::InvalidArgumentError("--out is required"));
  if (absl::Status s = crypto::ValidateMemberName(a.name); !s.ok()) {
    return Fail("csr", absl::InvalidArgumentError(absl::StrCat("--name: ", s.message())));
  }
  if (absl::Status s = MakeDir(a.out, 0700); !s.ok()) return Fail("csr", s);
  absl::StatusOr<std::string> key = crypto::GeneratePrivateKey();
  if (!key.ok()) return Fail("csr", key.status());
  absl::StatusOr<std::string> csr = crypto::CreateCertificateRequest(
      *key, a.name, a.organization.empty() ? a.name : a.organization);
  if (!csr.ok()) return Fail("csr", csr.status());
  const std::string base = a.out + "/" + a.name;
  if (absl::Status s = WriteFileAtomically(base + ".key", *key, 0600, a.force); !s.ok()) {
    return Fail("csr", s);
  }
  if (absl::Status s = WriteFileAtomically(base + ".csr", *csr, 0644, true); !s.ok()) {
    return Fail("csr", s);
  }
  std::cout << "wrote " << base << ".key (secret: keep it here) and " << base
            << ".csr (send this to the federation operator)\n";
  return 0;
}

int PkiRevoke(const PkiArgs& a, std::vector<PkiEvent>* events) {
  absl::StatusOr<crypto::KeyAndCertificate> ca = LoadCa(a);
  if (!ca.ok()) return Fail("revoke", ca.status());
  if (a.serial.empty() == a.name.empty()) {
    return Fail("revoke", absl::InvalidArgumentError("give exactly one of --serial, --name"));
  }
  absl::StatusOr<crypto::RevocationList> list = LoadCrl(a, *ca);
  if (!list.ok()) return Fail("revoke", list.status());
  absl::StatusOr<std::vector<Issued>> issued = ListIssued(a);
  if (!issued.ok()) return Fail("revoke", issued.status());
  std::set<std::string> already;
  for (const auto& r : list->revoked) already.insert(r.serial_hex);
  std::vector<std::string> serials;
  if (!a.serial.empty()) {
    std::string serial = a.serial;
    std::transform(serial.begin(), serial.end(), serial.begin(), ::tolower);
    serial.erase(0, std::min(serial.find_first_not_of('0'), serial.size() - 1));
    serials.push_back(serial);
  } else {
    for (const Issued& i : *issued) {
      if (i.id.common_name == a.name && !already.count(i.id.serial_hex)) {
        serials.push_back(i.id.serial_hex);
      }
    }
    if (serials.empty()) {
      return Fail("revoke", absl::NotFoundError(absl::StrCat(
                                "no unrevoked certificate named \"", a.name, "\" in ",
                                IssuedDir(a))));
    }
  }
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::vector<PkiEvent> pending;  // reported once the CRL is written
  for (const std::string& serial : serials) {
    if (already.count(serial)) {
      std::cout << "serial " << serial << " was already revoked\n";
      continue;
    }
    list->revoked.push_back({serial, now});
    if (events != nullptr) {
      PkiEvent e{"certificate.revoked", {{"serial", serial}}};
      for (const Issued& i : *issued) {
        if (i.id.serial_hex != serial) continue;
        e.details["name"] = i.id.common_name;
        e.details["role"] = i.id.organizational_unit;
      }
      pending.push_back(std::move(e));
    }
  }
  if (absl::Status s = WriteCrl(a, *ca, *list); !s.ok()) return Fail("revoke", s);
  if (events != nullptr) events->insert(events->end(), pending.begin(), pending.end());
  std::cout << "revoked " << absl::StrJoin(serials, ", ") << "; " << CrlPath(a) << " now lists "
            << list->revoked.size() << " (a coordinator given this file ends the revoked certificates' connections within "
               "seconds)\n";
  return 0;
}

int PkiCrl(const PkiArgs& a) {
  absl::StatusOr<crypto::KeyAndCertificate> ca = LoadCa(a);
  if (!ca.ok()) return Fail("crl", ca.status());
  absl::StatusOr<crypto::RevocationList> list = LoadCrl(a, *ca);
  if (!list.ok()) return Fail("crl", list.status());
  if (absl::Status s = WriteCrl(a, *ca, *list); !s.ok()) return Fail("crl", s);
  std::cout << "re-signed " << CrlPath(a) << " (" << list->revoked.size()
            << " revoked), valid for " << a.crl_days << " days\n";
  return 0;
}

int PkiList(const PkiArgs& a) {
  absl::StatusOr<crypto::KeyAndCertificate> ca = LoadCa(a);
  if (!ca.ok()) return Fail("list", ca.status());
  absl::StatusOr<crypto::RevocationList> list = LoadCrl(a, *ca);
  if (!list.ok()) return Fail("list", list.status());
  absl::StatusOr<std::vector<Issued>> issued = ListIssued(a);
  if (!issued.ok()) return Fail("list", issued.status());
  std::set<std::string> revoked;
  for (const auto& r : list->revoked) revoked.insert(r.serial_hex);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  auto state = [&](const crypto::CertificateIdentity& id) {
    return revoked.count(id.serial_hex) ? "revoked" : id.not_after_unix < now ? "expired" : "valid";
  };
  auto date = [](int64_t t) {
    return absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(t), absl::UTCTimeZone());
  };
  if (a.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const Issued& i : *issued) {
      rows.push_back({{"name", i.id.common_name}, {"role", i.id.organizational_unit},
                      {"organization", i.id.organization}, {"serial", i.id.serial_hex},
                      {"notAfter", date(i.id.not_after_unix)}, {"state", state(i.id)}});
    }
    std::cout << nlohmann::json{{"certificates", rows}, {"crlNumber", list->number},
                                {"crlNextUpdate", date(list->next_update_unix)}}.dump(2)
              << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("%-24s %-12s %-20s %-33s %-11s %s\n", "NAME", "ROLE", "ORG",
                               "SERIAL", "EXPIRES", "STATE");
  for (const Issued& i : *issued) {
    std::cout << absl::StrFormat("%-24s %-12s %-20s %-33s %-11s %s\n", i.id.common_name,
                                 i.id.organizational_unit, i.id.organization, i.id.serial_hex,
                                 date(i.id.not_after_unix), state(i.id));
  }
  std::cout << "CRL #" << list->number << ": " << list->revoked.size()
            << " revoked, next update due " << date(list->next_update_unix) << "\n";
  return 0;
}

}  // namespace tessera::cli

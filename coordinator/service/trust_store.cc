#include "coordinator/service/trust_store.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "core/base/file.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/pki.h"

namespace tessera::coordinator {

absl::StatusOr<std::unique_ptr<TrustStore>> TrustStore::Open(std::string ca_path,
                                                             std::string crl_path) {
  std::unique_ptr<TrustStore> store(new TrustStore(std::move(ca_path), std::move(crl_path)));
  absl::MutexLock lock(&store->mu_);
  store->ca_stamp_.size = -2;  // force the first load
  if (absl::Status s = store->Refresh(); !s.ok()) return s;
  return store;
}

absl::Status TrustStore::Refresh() {
  absl::StatusOr<FileStamp> ca_stamp = StatFile(ca_path_);
  absl::StatusOr<FileStamp> crl_stamp = crl_path_.empty() ? FileStamp{} : StatFile(crl_path_);
  if (ca_stamp.ok() && crl_stamp.ok() && *ca_stamp == ca_stamp_ && *crl_stamp == crl_stamp_) {
    return absl::OkStatus();
  }
  // Remember what we looked at, so a bad file is reported once, not on every connection.
  const bool first = ca_stamp_.size == -2;
  if (ca_stamp.ok()) ca_stamp_ = *ca_stamp;
  if (crl_stamp.ok()) crl_stamp_ = *crl_stamp;

  absl::Status status = ca_stamp.ok() ? crl_stamp.status() : ca_stamp.status();
  std::string ca, crl;
  size_t revoked = 0;
  int64_t next_update = INT64_MAX;
  if (status.ok()) {
    absl::StatusOr<std::string> read = ReadFileToString(ca_path_);
    if (read.ok()) ca = *std::move(read);
    status = read.status();
  }
  if (status.ok()) {
    absl::StatusOr<crypto::CertificateIdentity> id = crypto::ParseCertificateIdentity(ca);
    if (!id.ok()) status = absl::InvalidArgumentError(absl::StrCat(ca_path_, ": ", id.status().message()));
  }
  if (status.ok() && !crl_path_.empty()) {
    absl::StatusOr<std::string> read = ReadFileToString(crl_path_);
    if (read.ok()) crl = *std::move(read);
    status = read.status();
    if (status.ok()) {
      absl::StatusOr<crypto::RevocationList> list = crypto::ReadRevocationList(crl, ca);
      if (list.ok()) {
        revoked = list->revoked.size();
        next_update = list->next_update_unix > 0 ? list->next_update_unix : INT64_MAX;
      } else {
        status = absl::Status(list.status().code(),
                              absl::StrCat(crl_path_, ": ", list.status().message()));
      }
    }
  }
  if (!status.ok()) {
    if (!first) LOG(ERROR) << "trust store: keeping the previous CA and CRL: " << status;
    return status;
  }
  if (!first) {
    LOG(INFO) << "trust store: reloaded " << ca_path_
              << (crl_path_.empty() ? "" : absl::StrCat(" and ", crl_path_, " (", revoked,
                                                         " revoked)"));
  }
  absl::StatusOr<std::shared_ptr<const crypto::TrustAnchors>> anchors =
      crypto::TrustAnchors::Create(ca, crl);
  if (!anchors.ok()) {
    if (!first) LOG(ERROR) << "trust store: keeping the previous CA and CRL: " << anchors.status();
    return anchors.status();
  }
  ca_pem_ = std::move(ca);
  anchors_ = *std::move(anchors);
  revoked_ = revoked;
  crl_next_update_ = next_update;
  verified_.clear();
  if (!first) ++generation_;
  return absl::OkStatus();
}

absl::StatusOr<crypto::CertificateIdentity> TrustStore::Verify(
    const std::string& certificate_pem) {
  std::shared_ptr<const crypto::TrustAnchors> anchors;
  {
    absl::MutexLock lock(&mu_);
    (void)Refresh();  // on failure the previous files stay in force (logged once)
    auto it = verified_.find(certificate_pem);
    if (it != verified_.end()) {
      const int64_t now = static_cast<int64_t>(std::time(nullptr));
      if (now <= it->second.not_after_unix && now < crl_next_update_) {
        return it->second;
      }
      verified_.erase(it);  // it or the CRL expired since: verify again, for the reason
    }
    anchors = anchors_;
  }
  absl::Status s = anchors->Verify(certificate_pem);
  if (!s.ok()) {
    return absl::PermissionDeniedError(s.message());
  }
  absl::StatusOr<crypto::CertificateIdentity> id =
      crypto::ParseCertificateIdentity(certificate_pem);
  if (!id.ok()) return absl::PermissionDeniedError(id.status().message());
  absl::MutexLock lock(&mu_);
  if (anchors == anchors_) {  // not reloaded meanwhile
    if (verified_.size() >= kMaxVerified) verified_.clear();
    verified_.emplace(certificate_pem, *id);
  }
  return id;
}

std::shared_ptr<const crypto::TrustAnchors> TrustStore::anchors() {
  absl::MutexLock lock(&mu_);
  (void)Refresh();  // on failure the previous files stay in force (logged once)
  return anchors_;
}

std::string TrustStore::ca_pem() {
  absl::MutexLock lock(&mu_);
  (void)Refresh();
  return ca_pem_;
}

uint64_t TrustStore::generation() {
  absl::MutexLock lock(&mu_);
  (void)Refresh();
  return generation_;
}

size_t TrustStore::revoked_count() {
  absl::MutexLock lock(&mu_);
  (void)Refresh();
  return revoked_;
}

}  // namespace tessera::coordinator

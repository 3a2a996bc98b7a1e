// File: trust_store.h
// Whom the coordinator trusts: the federation CA and, optionally, its certificate revocation
// list (CRL), each read from a file and re-read when the file changes on disk, so rotating the
// CA bundle or publishing a new CRL (`tessera pki revoke`) takes effect without a restart.
// Every TLS handshake and every RPC verifies the peer's certificate here: chain to the CA,
// validity period, and not revoked. A new file that does not parse, or a CRL the CA did not
// sign, is refused with an error log and the previous files stay in force.
#ifndef TESSERA_COORDINATOR_SERVICE_TRUST_STORE_H_
#define TESSERA_COORDINATOR_SERVICE_TRUST_STORE_H_

#include <ctime>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "core/base/file.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/certificate_chain.h"

namespace tessera::coordinator {

class TrustStore {
 public:
  // `crl_path` empty: no revocation checking. Errors: NOT_FOUND when a file cannot be read,
  // INVALID_ARGUMENT when it holds no certificate / CRL, PERMISSION_DENIED when the CRL was
  // not signed by the CA.
  static absl::StatusOr<std::unique_ptr<TrustStore>> Open(std::string ca_path,
                                                          std::string crl_path);

  // The certificate's identity, or PERMISSION_DENIED with the reason ("certificate revoked",
  // "certificate has expired", "unable to get local issuer certificate", ...). Re-reads
  // changed files first. A certificate that verified is remembered (until the files change or
  // it expires), so checking it again on each RPC costs a hash lookup.
  absl::StatusOr<crypto::CertificateIdentity> Verify(const std::string& certificate_pem);

  // The parsed CA and CRL in force (re-read if changed; a bad new file keeps the previous
  // ones). Never null after a successful Open.
  std::shared_ptr<const crypto::TrustAnchors> anchors();
  // The CA bundle in force (re-read if changed).
  std::string ca_pem();
  // Revoked serials in the CRL in force (0 without a CRL), for logs and metrics.
  size_t revoked_count();
  // Re-reads changed files; how many times the CA or CRL in force was replaced since Open
  // (a file that failed to load does not count). RevocationWatcher polls it.
  uint64_t generation();

 private:
  TrustStore(std::string ca_path, std::string crl_path)
      : ca_path_(std::move(ca_path)), crl_path_(std::move(crl_path)) {}
  // Loads both files if either changed; returns the load error (also logged) but keeps the
  // previous state when a reload fails. Not rate-limited: a stat per file per call.
  absl::Status Refresh() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string ca_path_;
  const std::string crl_path_;
  absl::Mutex mu_;
  FileStamp ca_stamp_ ABSL_GUARDED_BY(mu_);
  FileStamp crl_stamp_ ABSL_GUARDED_BY(mu_);
  std::string ca_pem_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const crypto::TrustAnchors> anchors_ ABSL_GUARDED_BY(mu_);
  size_t revoked_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t crl_next_update_ ABSL_GUARDED_BY(mu_) = INT64_MAX;  // past it, nothing is cached
  // Certificates that verified against `anchors_`, by PEM; cleared when the files change.
  static constexpr size_t kMaxVerified = 1 << 16;
  absl::flat_hash_map<std::string, crypto::CertificateIdentity> verified_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_TRUST_STORE_H_

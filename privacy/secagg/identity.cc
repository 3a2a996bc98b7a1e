#include "privacy/secagg/identity.h"

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/certificate_chain.h"
#include "privacy/crypto/signature.h"

namespace tessera::secagg {

absl::StatusOr<Signer> CertificateSigner(std::string certificate_pem,
                                         std::string private_key_pem) {
  // Prove the pair matches now rather than at the first advertisement.
  constexpr absl::string_view kProbe = "tessera secagg identity probe";
  TESSERA_ASSIGN_OR_RETURN(std::string sig,
                           crypto::SignWithPrivateKeyPem(private_key_pem, kProbe));
  if (absl::Status s = crypto::VerifyWithCertificate(certificate_pem, kProbe, sig); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the private key does not match the certificate: ", s.message()));
  }
  Signer signer;
  signer.identity.set_certificate_pem(certificate_pem);
  auto key = std::make_shared<const std::string>(std::move(private_key_pem));
  signer.sign = [key](absl::string_view message) {
    return crypto::SignWithPrivateKeyPem(*key, message);
  };
  return signer;
}

absl::StatusOr<Signer> EphemeralSigner() {
  TESSERA_ASSIGN_OR_RETURN(crypto::Ed25519Signer ed, crypto::Ed25519Signer::Generate());
  Signer signer;
  signer.identity.set_ed25519_public_key(ed.public_key());
  auto key = std::make_shared<const crypto::Ed25519Signer>(std::move(ed));
  signer.sign = [key](absl::string_view message) { return key->Sign(message); };
  return signer;
}

namespace {

struct FileTrust {
  std::string ca_path, crl_path;
  absl::Mutex mu;
  FileStamp ca_stamp ABSL_GUARDED_BY(mu), crl_stamp ABSL_GUARDED_BY(mu);
  absl::StatusOr<std::shared_ptr<const crypto::TrustAnchors>> anchors ABSL_GUARDED_BY(mu) =
      absl::UnavailableError("not loaded");

  absl::StatusOr<std::shared_ptr<const crypto::TrustAnchors>> Get() {
    absl::MutexLock l(&mu);
    // A file that cannot be stat()ed gets the empty stamp, so its reappearance is a change.
    const FileStamp ca = StatFile(ca_path).value_or(FileStamp{});
    const FileStamp crl = crl_path.empty() ? FileStamp{} : StatFile(crl_path).value_or(FileStamp{});
    if (anchors.ok() && ca == ca_stamp && crl == crl_stamp) return anchors;
    ca_stamp = ca;
    crl_stamp = crl;
    absl::StatusOr<std::string> ca_pem = ReadFileToString(ca_path);
    absl::StatusOr<std::string> crl_pem =
        crl_path.empty() ? std::string() : ReadFileToString(crl_path);
    if (!ca_pem.ok() || !crl_pem.ok()) {
      anchors = !ca_pem.ok() ? ca_pem.status() : crl_pem.status();
      return anchors;
    }
    anchors = crypto::TrustAnchors::Create(*ca_pem, *crl_pem);
    if (!anchors.ok()) {
      anchors = absl::Status(anchors.status().code(),
                             absl::StrCat(ca_path, " / ", crl_path.empty() ? "(no CRL)" : crl_path,
                                          ": ", anchors.status().message()));
    }
    return anchors;
  }
};

// Certificates that passed the chain and CRL check, for the anchors they passed against.
struct VerifiedCache {
  static constexpr size_t kMaxEntries = 1 << 16;
  static constexpr absl::Duration kLifetime = absl::Minutes(10);
  absl::Mutex mu;
  std::shared_ptr<const crypto::TrustAnchors> anchors ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, std::pair<crypto::CertificateIdentity, absl::Time>> ok
      ABSL_GUARDED_BY(mu);
};

}  // namespace

TrustSource FileTrustSource(std::string ca_path, std::string crl_path) {
  auto files = std::make_shared<FileTrust>();
  files->ca_path = std::move(ca_path);
  files->crl_path = std::move(crl_path);
  return [files] { return files->Get(); };
}

absl::StatusOr<TrustSource> FixedTrustSource(absl::string_view trusted_ca_pem,
                                             absl::string_view crl_pem) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<const crypto::TrustAnchors> anchors,
                           crypto::TrustAnchors::Create(trusted_ca_pem, crl_pem));
  return TrustSource([anchors]() -> absl::StatusOr<std::shared_ptr<const crypto::TrustAnchors>> {
    return anchors;
  });
}

VerifyFn CertificateVerifier(TrustSource trust, ExpectedName expected) {
  auto cache = std::make_shared<VerifiedCache>();
  // The chain, CRL and role check of one certificate, or the cached identity.
  auto check = [trust, cache](uint32_t index, const std::string& pem)
      -> absl::StatusOr<crypto::CertificateIdentity> {
    absl::StatusOr<std::shared_ptr<const crypto::TrustAnchors>> anchors = trust();
    if (!anchors.ok()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot check client ", index, "'s certificate: ", anchors.status().message()));
    }
    const absl::Time now = absl::Now();
    {
      absl::MutexLock l(&cache->mu);
      if (cache->anchors != *anchors) {
        cache->anchors = *anchors;
        cache->ok.clear();
      }
      auto it = cache->ok.find(pem);
      if (it != cache->ok.end() && now - it->second.second < VerifiedCache::kLifetime) {
        return it->second.first;
      }
    }
    if (absl::Status s = (*anchors)->Verify(pem); !s.ok()) {
      return absl::PermissionDeniedError(
          absl::StrCat("client ", index, "'s certificate: ", s.message()));
    }
    TESSERA_ASSIGN_OR_RETURN(crypto::CertificateIdentity id,
                             crypto::ParseCertificateIdentity(pem));
    if (id.organizational_unit != "client") {
      return absl::PermissionDeniedError(absl::StrCat(
          "client ", index, "'s certificate has role \"", id.organizational_unit,
          "\", not \"client\""));
    }
    absl::MutexLock l(&cache->mu);
    if (cache->anchors == *anchors) {
      if (cache->ok.size() >= VerifiedCache::kMaxEntries) cache->ok.clear();
      cache->ok[pem] = {id, now};
    }
    return id;
  };
  return [check, expected](uint32_t index, const v1::Identity& identity,
                           absl::string_view message,
                           absl::string_view signature) -> absl::Status {
    if (!identity.has_certificate_pem()) {
      return absl::PermissionDeniedError(
          absl::StrCat("client ", index, " advertised no certificate"));
    }
    const std::string& pem = identity.certificate_pem();
    if (pem.size() > kMaxIdentityCertificateBytes) {
      return absl::InvalidArgumentError(absl::StrCat("client ", index, "'s certificate is ",
                                                     pem.size(), " bytes; the limit is ",
                                                     kMaxIdentityCertificateBytes));
    }
    TESSERA_ASSIGN_OR_RETURN(crypto::CertificateIdentity id, check(index, pem));
    if (expected) {
      const std::string want = expected(index);
      if (!want.empty() && want != id.common_name) {
        return absl::PermissionDeniedError(absl::StrCat("client ", index, " is \"", want,
                                                        "\" but its certificate names \"",
                                                        id.common_name, "\""));
      }
    }
    if (absl::Status s = crypto::VerifyWithCertificate(pem, message, signature); !s.ok()) {
      return absl::PermissionDeniedError(absl::StrCat("client ", index, ": ", s.message()));
    }
    return absl::OkStatus();
  };
}

VerifyFn InsecureVerifier() {
  return [](uint32_t index, const v1::Identity& identity, absl::string_view message,
            absl::string_view signature) -> absl::Status {
    absl::Status s;
    if (identity.has_ed25519_public_key()) {
      s = crypto::Ed25519Verify(identity.ed25519_public_key(), message, signature);
    } else if (identity.has_certificate_pem() &&
               identity.certificate_pem().size() <= kMaxIdentityCertificateBytes) {
      s = crypto::VerifyWithCertificate(identity.certificate_pem(), message, signature);
    } else {
      return absl::PermissionDeniedError(absl::StrCat("client ", index, " has no identity"));
    }
    if (!s.ok()) {
      return absl::PermissionDeniedError(absl::StrCat("client ", index, ": ", s.message()));
    }
    return absl::OkStatus();
  };
}

}  // namespace tessera::secagg

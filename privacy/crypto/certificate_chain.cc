#include "privacy/crypto/certificate_chain.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "privacy/crypto/openssl_handles.h"

namespace tessera {
namespace crypto {
namespace {

using crypto_internal::BioPtr;
using crypto_internal::X509Ptr;

struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
  void operator()(X509_CRL* c) const { X509_CRL_free(c); }
};

BioPtr ReadOnlyBio(absl::string_view pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

}  // namespace

absl::Status VerifyCertificateChain(absl::string_view certificate_pem,
                                    absl::string_view trusted_ca_pem) {
  return VerifyCertificateChain(certificate_pem, trusted_ca_pem, absl::string_view());
}

struct TrustAnchors::Impl {
  std::unique_ptr<X509_STORE, StoreFree> store;
};

TrustAnchors::TrustAnchors(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TrustAnchors::~TrustAnchors() = default;

absl::StatusOr<std::shared_ptr<const TrustAnchors>> TrustAnchors::Create(
    absl::string_view trusted_ca_pem, absl::string_view crl_pem) {
  auto impl = std::make_unique<Impl>();
  impl->store.reset(X509_STORE_new());
  if (impl->store == nullptr) return absl::InternalError("X509_STORE_new failed");
  BioPtr ca_bio = ReadOnlyBio(trusted_ca_pem);
  int added = 0;
  while (ca_bio != nullptr) {
    X509Ptr ca(PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr));
    if (ca == nullptr) break;
    if (X509_STORE_add_cert(impl->store.get(), ca.get()) != 1) {
      return absl::InternalError("X509_STORE_add_cert failed");
    }
    ++added;
  }
  ERR_clear_error();  // the read that ended the loop queued "no start line"
  if (added == 0) return absl::InvalidArgumentError("no certificate in the trusted CA PEM");
  if (!crl_pem.empty()) {
    BioPtr crl_bio = ReadOnlyBio(crl_pem);
    std::unique_ptr<X509_CRL, StoreFree> crl(
        crl_bio ? PEM_read_bio_X509_CRL(crl_bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (crl == nullptr) return absl::InvalidArgumentError("no CRL in the revocation list PEM");
    if (X509_STORE_add_crl(impl->store.get(), crl.get()) != 1 ||
        X509_STORE_set_flags(impl->store.get(), X509_V_FLAG_CRL_CHECK) != 1) {
      return absl::InternalError("X509_STORE_add_crl failed");
    }
  }
  return std::shared_ptr<const TrustAnchors>(new TrustAnchors(std::move(impl)));
}

absl::Status TrustAnchors::Verify(absl::string_view certificate_pem) const {
  BioPtr leaf_bio = ReadOnlyBio(certificate_pem);
  X509Ptr leaf(leaf_bio ? PEM_read_bio_X509(leaf_bio.get(), nullptr, nullptr, nullptr)
                        : nullptr);
  if (leaf == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("no certificate in the PEM");
  }
  // The store is shared and only read: each verification has its own context.
  std::unique_ptr<X509_STORE_CTX, StoreFree> ctx(X509_STORE_CTX_new());
  if (ctx == nullptr ||
      X509_STORE_CTX_init(ctx.get(), impl_->store.get(), leaf.get(), nullptr) != 1) {
    return absl::InternalError("X509_STORE_CTX_init failed");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    ERR_clear_error();
    return absl::PermissionDeniedError(absl::StrCat(
        "certificate chain does not verify: ",
        X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()))));
  }
  return absl::OkStatus();
}

absl::Status VerifyCertificateChain(absl::string_view certificate_pem,
                                    absl::string_view trusted_ca_pem,
                                    absl::string_view crl_pem) {
  BioPtr leaf_bio = ReadOnlyBio(certificate_pem);
  X509Ptr leaf(leaf_bio ? PEM_read_bio_X509(leaf_bio.get(), nullptr, nullptr, nullptr)
                        : nullptr);
  if (leaf == nullptr) return absl::InvalidArgumentError("no certificate in the PEM");
  absl::StatusOr<std::shared_ptr<const TrustAnchors>> anchors =
      TrustAnchors::Create(trusted_ca_pem, crl_pem);
  if (!anchors.ok()) return anchors.status();
  return (*anchors)->Verify(certificate_pem);
}

}  // namespace crypto
}  // namespace tessera

#include "privacy/crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "absl/strings/str_cat.h"
#include "core/crypto/openssl_error.h"
#include "privacy/crypto/openssl_handles.h"

namespace tessera {
namespace crypto {

absl::StatusOr<std::string> HkdfSha256(absl::string_view ikm,
                                       absl::string_view salt,
                                       absl::string_view info, size_t length) {
  if (length == 0 || length > kHkdfSha256MaxOutputBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("HKDF-SHA256 output length must be in [1, ",
                     kHkdfSha256MaxOutputBytes, "], got ", length));
  }
  crypto_internal::ClearOpenSslErrors();
  crypto_internal::KdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (kdf == nullptr) {
    return crypto_internal::OpenSslError(absl::StatusCode::kInternal,
                                         "EVP_KDF_fetch(HKDF) failed");
  }
  crypto_internal::KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (ctx == nullptr) {
    return crypto_internal::OpenSslError(absl::StatusCode::kInternal,
                                         "EVP_KDF_CTX_new failed");
  }
  // OpenSSL's params take non-const pointers but only read through them.
  char digest[] = "SHA256";
  // A non-null pointer even for empty inputs: OpenSSL treats a null key as
  // "missing".
  static char kEmpty[1] = {0};
  auto mutable_data = [](absl::string_view s) {
    return s.empty() ? static_cast<void*>(kEmpty) : const_cast<char*>(s.data());
  };
  OSSL_PARAM params[5];
  int n = 0;
  params[n++] =
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, mutable_data(ikm), ikm.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, mutable_data(salt), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_INFO, mutable_data(info), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();

  std::string out(length, '\0');
  if (EVP_KDF_derive(ctx.get(), crypto_internal::Bytes(out.data()), length,
                     params) != 1) {
    return crypto_internal::OpenSslError(absl::StatusCode::kInternal,
                                         "HKDF-SHA256 derivation failed");
  }
  return out;
}

}  // namespace crypto
}  // namespace tessera

#include "privacy/crypto/x25519.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/crypto/openssl_error.h"
#include "privacy/crypto/openssl_handles.h"

namespace tessera {
namespace crypto {
namespace {

using crypto_internal::Bytes;
using crypto_internal::OpenSslError;
using crypto_internal::PkeyCtxPtr;
using crypto_internal::PkeyPtr;

absl::StatusOr<std::string> RawKey(const EVP_PKEY* key, bool is_private) {
  std::string out(kX25519KeyBytes, '\0');
  size_t len = out.size();
  const int rc =
      is_private ? EVP_PKEY_get_raw_private_key(key, Bytes(out.data()), &len)
                 : EVP_PKEY_get_raw_public_key(key, Bytes(out.data()), &len);
  if (rc != 1 || len != kX25519KeyBytes) {
    return OpenSslError(absl::StatusCode::kInternal,
                        "cannot export raw X25519 key");
  }
  return out;
}

absl::StatusOr<PkeyPtr> PrivateKey(absl::string_view private_key32) {
  PkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr,
                                           Bytes(private_key32.data()),
                                           private_key32.size()));
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal,
                        "cannot load X25519 private key");
  }
  return key;
}

}  // namespace

X25519KeyPair::~X25519KeyPair() {
  if (!private_key_.empty()) {
    OPENSSL_cleanse(private_key_.data(), private_key_.size());
  }
}

absl::StatusOr<X25519KeyPair> X25519KeyPair::Generate() {
  crypto_internal::ClearOpenSslErrors();
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal, "X25519 keygen failed");
  }
  absl::StatusOr<std::string> priv = RawKey(key.get(), /*is_private=*/true);
  if (!priv.ok()) return priv.status();
  absl::StatusOr<std::string> pub = RawKey(key.get(), /*is_private=*/false);
  if (!pub.ok()) return pub.status();
  return X25519KeyPair(*std::move(priv), *std::move(pub));
}

absl::StatusOr<X25519KeyPair> X25519KeyPair::FromPrivate(
    absl::string_view private_key32) {
  if (private_key32.size() != kX25519KeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "X25519 private key must be 32 bytes, got ", private_key32.size()));
  }
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<PkeyPtr> key = PrivateKey(private_key32);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> pub = RawKey(key->get(), /*is_private=*/false);
  if (!pub.ok()) return pub.status();
  return X25519KeyPair(std::string(private_key32), *std::move(pub));
}

absl::StatusOr<std::string> X25519KeyPair::SharedSecret(
    absl::string_view peer_public32) const {
  if (peer_public32.size() != kX25519KeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "X25519 peer public key must be 32 bytes, got ", peer_public32.size()));
  }
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<PkeyPtr> mine = PrivateKey(private_key_);
  if (!mine.ok()) return mine.status();
  PkeyPtr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr,
                                           Bytes(peer_public32.data()),
                                           peer_public32.size()));
  if (peer == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "cannot load X25519 peer public key");
  }
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, mine->get(), nullptr));
  if (ctx == nullptr || EVP_PKEY_derive_init(ctx.get()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal,
                        "X25519 derive init failed");
  }
  if (EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "X25519 peer public key rejected");
  }
  std::string secret(kX25519SharedSecretBytes, '\0');
  size_t len = secret.size();
  // OpenSSL itself fails the derivation when the result is all zeros, i.e.
  // the peer sent a small-order point; that is the peer's fault.
  if (EVP_PKEY_derive(ctx.get(), Bytes(secret.data()), &len) != 1) {
    return OpenSslError(
        absl::StatusCode::kInvalidArgument,
        "X25519 derivation failed (small-order peer public key?)");
  }
  unsigned char any = 0;
  for (char c : secret) any |= static_cast<unsigned char>(c);
  if (len != kX25519SharedSecretBytes || any == 0) {
    return absl::InvalidArgumentError(
        "X25519 shared secret is all zeros: small-order peer public key");
  }
  return secret;
}

}  // namespace crypto
}  // namespace tessera

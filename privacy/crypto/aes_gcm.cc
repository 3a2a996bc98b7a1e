#include "privacy/crypto/aes_gcm.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"
#include "core/crypto/openssl_error.h"
#include "privacy/crypto/openssl_handles.h"
#include "privacy/crypto/random.h"

namespace tessera {
namespace crypto {
namespace {

using crypto_internal::Bytes;
using crypto_internal::CipherCtxPtr;
using crypto_internal::OpenSslError;

// EVP_*Update take int lengths; larger inputs go through in pieces.
constexpr size_t kMaxPiece = size_t{1} << 30;

absl::Status CheckKey(absl::string_view key32) {
  if (key32.size() != kAesGcmKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-256-GCM key must be 32 bytes, got ", key32.size()));
  }
  return absl::OkStatus();
}

absl::Status Internal(absl::string_view what) {
  return OpenSslError(absl::StatusCode::kInternal, what);
}

// A context initialised for AES-256-GCM with a 12-byte IV, key and nonce.
absl::StatusOr<CipherCtxPtr> NewGcmContext(absl::string_view key32,
                                           absl::string_view nonce12,
                                           bool encrypt) {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return Internal("EVP_CIPHER_CTX_new failed");
  const int enc = encrypt ? 1 : 0;
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr,
                        enc) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN,
                          static_cast<int>(kAesGcmNonceBytes), nullptr) != 1 ||
      EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, Bytes(key32.data()),
                        Bytes(nonce12.data()), enc) != 1) {
    return Internal("AES-256-GCM init failed");
  }
  return ctx;
}

// Feeds `in` through the context; `out` null means AAD.
bool UpdateInPieces(EVP_CIPHER_CTX* ctx, absl::string_view in,
                    unsigned char* out) {
  for (size_t done = 0; done < in.size();) {
    const size_t piece = std::min(in.size() - done, kMaxPiece);
    int written = 0;
    if (EVP_CipherUpdate(ctx, out == nullptr ? nullptr : out + done, &written,
                         Bytes(in.data() + done),
                         static_cast<int>(piece)) != 1) {
      return false;
    }
    done += piece;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> AesGcmEncryptWithNonce(absl::string_view key32,
                                                   absl::string_view nonce12,
                                                   absl::string_view plaintext,
                                                   absl::string_view aad) {
  if (absl::Status s = CheckKey(key32); !s.ok()) return s;
  if (nonce12.size() != kAesGcmNonceBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-GCM nonce must be 12 bytes, got ", nonce12.size()));
  }
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<CipherCtxPtr> ctx =
      NewGcmContext(key32, nonce12, /*encrypt=*/true);
  if (!ctx.ok()) return ctx.status();

  std::string sealed(kAesGcmOverheadBytes + plaintext.size(), '\0');
  std::copy(nonce12.begin(), nonce12.end(), sealed.begin());
  unsigned char* body = Bytes(sealed.data()) + kAesGcmNonceBytes;
  if (!UpdateInPieces(ctx->get(), aad, nullptr) ||
      !UpdateInPieces(ctx->get(), plaintext, body)) {
    return Internal("AES-256-GCM encrypt failed");
  }
  int final_len = 0;
  if (EVP_EncryptFinal_ex(ctx->get(), body + plaintext.size(), &final_len) !=
          1 ||
      final_len != 0 ||
      EVP_CIPHER_CTX_ctrl(ctx->get(), EVP_CTRL_GCM_GET_TAG,
                          static_cast<int>(kAesGcmTagBytes),
                          body + plaintext.size()) != 1) {
    return Internal("AES-256-GCM finalize failed");
  }
  return sealed;
}

absl::StatusOr<std::string> AesGcmEncrypt(absl::string_view key32,
                                          absl::string_view plaintext,
                                          absl::string_view aad) {
  if (absl::Status s = CheckKey(key32); !s.ok()) return s;
  absl::StatusOr<std::string> nonce = RandomBytes(kAesGcmNonceBytes);
  if (!nonce.ok()) return nonce.status();
  return AesGcmEncryptWithNonce(key32, *nonce, plaintext, aad);
}

absl::StatusOr<std::string> AesGcmDecrypt(absl::string_view key32,
                                          absl::string_view sealed,
                                          absl::string_view aad) {
  if (absl::Status s = CheckKey(key32); !s.ok()) return s;
  if (sealed.size() < kAesGcmOverheadBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-GCM message truncated: ", sealed.size(),
                     " bytes, need at least ", kAesGcmOverheadBytes));
  }
  const absl::string_view nonce = sealed.substr(0, kAesGcmNonceBytes);
  const absl::string_view ciphertext =
      sealed.substr(kAesGcmNonceBytes, sealed.size() - kAesGcmOverheadBytes);
  // OpenSSL's SET_TAG takes a non-const pointer; copy the tag.
  unsigned char tag[kAesGcmTagBytes];
  std::copy_n(sealed.end() - kAesGcmTagBytes, kAesGcmTagBytes, tag);

  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<CipherCtxPtr> ctx =
      NewGcmContext(key32, nonce, /*encrypt=*/false);
  if (!ctx.ok()) return ctx.status();
  std::string plaintext(ciphertext.size(), '\0');
  if (!UpdateInPieces(ctx->get(), aad, nullptr) ||
      !UpdateInPieces(ctx->get(), ciphertext, Bytes(plaintext.data())) ||
      EVP_CIPHER_CTX_ctrl(ctx->get(), EVP_CTRL_GCM_SET_TAG,
                          static_cast<int>(kAesGcmTagBytes), tag) != 1) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return Internal("AES-256-GCM decrypt failed");
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx->get(), Bytes(plaintext.data()), &final_len) !=
      1) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    crypto_internal::ClearOpenSslErrors();
    return absl::DataLossError(
        "AES-GCM authentication failed: wrong key or aad, or modified data");
  }
  return plaintext;
}

}  // namespace crypto
}  // namespace tessera

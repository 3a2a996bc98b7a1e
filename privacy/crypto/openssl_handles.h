// File: openssl_handles.h
// Internal to privacy/crypto: std::unique_ptr aliases that free OpenSSL
// objects, so every early return releases what was allocated. Include only
// from .cc files in this folder (it includes OpenSSL headers).
#ifndef TESSERA_PRIVACY_CRYPTO_OPENSSL_HANDLES_H_
#define TESSERA_PRIVACY_CRYPTO_OPENSSL_HANDLES_H_

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/x509.h>

#include <memory>

namespace tessera {
namespace crypto_internal {

struct OpenSslDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
  void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509* p) const { X509_free(p); }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, OpenSslDeleter>;
using KdfPtr = std::unique_ptr<EVP_KDF, OpenSslDeleter>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, OpenSslDeleter>;
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter>;

// Reinterprets string bytes for OpenSSL's unsigned char APIs.
inline const unsigned char* Bytes(const char* p) {
  return reinterpret_cast<const unsigned char*>(p);
}
inline unsigned char* Bytes(char* p) {
  return reinterpret_cast<unsigned char*>(p);
}

}  // namespace crypto_internal
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_OPENSSL_HANDLES_H_

#include "core/crypto/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/crypto/openssl_error.h"

namespace tessera {
namespace crypto {
namespace {

[[noreturn]] void DieOpenSsl(const char* what) {
  const std::string errors = crypto_internal::DrainOpenSslErrors();
  std::fprintf(stderr, "FATAL: core/crypto/sha256.cc: %s failed: %s\n", what,
               errors.c_str());
  std::abort();
}

// Fetched once: OpenSSL 3 would otherwise look the algorithm up on every init.
const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr) DieOpenSsl("EVP_MD_fetch(SHA256)");
    return fetched;  // intentionally never freed
  }();
  return md;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

struct Sha256::Impl {
  Impl() : ctx(EVP_MD_CTX_new()) {
    if (ctx == nullptr) DieOpenSsl("EVP_MD_CTX_new");
    if (EVP_DigestInit_ex(ctx, Sha256Md(), nullptr) != 1)
      DieOpenSsl("EVP_DigestInit_ex");
  }
  ~Impl() { EVP_MD_CTX_free(ctx); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  EVP_MD_CTX* ctx;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&& other) noexcept = default;
Sha256& Sha256::operator=(Sha256&& other) noexcept = default;

void Sha256::Update(absl::string_view data) {
  if (data.empty()) return;
  if (EVP_DigestUpdate(impl_->ctx, data.data(), data.size()) != 1) {
    DieOpenSsl("EVP_DigestUpdate");
  }
}

std::string Sha256::Finish() && {
  std::string digest(kSha256DigestBytes, '\0');
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx,
                         reinterpret_cast<unsigned char*>(digest.data()),
                         &len) != 1 ||
      len != kSha256DigestBytes) {
    DieOpenSsl("EVP_DigestFinal_ex");
  }
  impl_.reset();
  return digest;
}

std::string Sha256Digest(absl::string_view data) {
  Sha256 hasher;
  hasher.Update(data);
  return std::move(hasher).Finish();
}

std::string HexEncode(absl::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 0xF];
  }
  return out;
}

absl::StatusOr<std::string> HexDecode(absl::string_view hex) {
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("hex string has odd length ", hex.size()));
  }
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexValue(hex[i]);
    const int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid hex character at offset ", hi < 0 ? i : i + 1));
    }
    out[i / 2] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

}  // namespace crypto
}  // namespace tessera

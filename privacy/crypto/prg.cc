#include "privacy/crypto/prg.h"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/byte_order.h"
#include "core/crypto/openssl_error.h"
#include "privacy/crypto/hkdf.h"
#include "privacy/crypto/openssl_handles.h"

namespace tessera {
namespace crypto {
namespace {

// Keystream is produced in pieces of this size from a block of zeros.
constexpr size_t kZeroBlock = 16 << 10;

[[noreturn]] void DieOpenSsl(const char* what) {
  const std::string errors = crypto_internal::DrainOpenSslErrors();
  std::fprintf(stderr, "FATAL: privacy/crypto/prg.cc: %s failed: %s\n", what,
               errors.c_str());
  std::abort();
}

}  // namespace

struct MaskPrg::Impl {
  crypto_internal::CipherCtxPtr ctx;

  // Writes `n` bytes of keystream to `p`: CTR mode XORs the keystream into its input, so
  // encrypting zeros yields the keystream. The zeros come from one small block that stays in
  // cache, so `p` is written once and never read (no memset pass over it).
  void Keystream(uint8_t* p, size_t n) {
    static const uint8_t kZeros[kZeroBlock] = {};
    for (size_t done = 0; done < n;) {
      const size_t piece = std::min(n - done, kZeroBlock);
      int written = 0;
      if (EVP_EncryptUpdate(ctx.get(), p + done, &written, kZeros,
                            static_cast<int>(piece)) != 1 ||
          static_cast<size_t>(written) != piece) {
        DieOpenSsl("EVP_EncryptUpdate(AES-256-CTR)");
      }
      done += piece;
    }
  }

  template <typename Word>
  void FillWords(absl::Span<Word> out) {
    if (out.empty()) return;
    auto* bytes = reinterpret_cast<uint8_t*>(out.data());
    Keystream(bytes, out.size() * sizeof(Word));
    if constexpr (std::endian::native != std::endian::little) {
      for (Word& w : out) {
        uint8_t le[sizeof(Word)];
        std::memcpy(le, &w, sizeof(Word));
        w = static_cast<Word>(LoadLittleEndian(le, sizeof(Word)));
      }
    }
  }
};

MaskPrg::MaskPrg(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MaskPrg::~MaskPrg() = default;
MaskPrg::MaskPrg(MaskPrg&& other) noexcept = default;
MaskPrg& MaskPrg::operator=(MaskPrg&& other) noexcept = default;

absl::StatusOr<MaskPrg> MaskPrg::Create(absl::string_view seed32) {
  static constexpr char kZeroCounter[16] = {};
  return CreateWithCounter(seed32, absl::string_view(kZeroCounter, 16));
}

absl::StatusOr<MaskPrg> MaskPrg::CreateWithCounter(absl::string_view seed32,
                                                   absl::string_view iv16) {
  if (seed32.size() != kMaskSeedBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("mask PRG seed must be 32 bytes, got ", seed32.size()));
  }
  if (iv16.size() != 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AES-CTR initial counter must be 16 bytes, got ", iv16.size()));
  }
  crypto_internal::ClearOpenSslErrors();
  auto impl = std::make_unique<Impl>();
  impl->ctx.reset(EVP_CIPHER_CTX_new());
  if (impl->ctx == nullptr ||
      EVP_EncryptInit_ex(impl->ctx.get(), EVP_aes_256_ctr(), nullptr,
                         crypto_internal::Bytes(seed32.data()),
                         crypto_internal::Bytes(iv16.data())) != 1) {
    return crypto_internal::OpenSslError(absl::StatusCode::kInternal,
                                         "AES-256-CTR init failed");
  }
  return MaskPrg(std::move(impl));
}

void MaskPrg::Fill(absl::Span<uint8_t> out) {
  if (!out.empty()) impl_->Keystream(out.data(), out.size());
}

void MaskPrg::FillUint32(absl::Span<uint32_t> out) { impl_->FillWords(out); }

void MaskPrg::FillUint64(absl::Span<uint64_t> out) { impl_->FillWords(out); }

absl::StatusOr<std::string> DeriveMaskSeed(absl::string_view shared_secret,
                                           absl::string_view session_id,
                                           uint32_t round,
                                           absl::string_view tensor_name) {
  if (shared_secret.empty()) {
    return absl::InvalidArgumentError("mask seed: shared secret is empty");
  }
  constexpr size_t kMaxField = std::numeric_limits<uint32_t>::max();
  if (session_id.size() > kMaxField || tensor_name.size() > kMaxField) {
    return absl::InvalidArgumentError(
        "mask seed: session id or tensor name too long");
  }
  std::string info(kMaskSeedInfoLabel);
  AppendBigEndian(info, static_cast<uint32_t>(session_id.size()), 4);
  info.append(session_id.data(), session_id.size());
  AppendBigEndian(info, round, 4);
  AppendBigEndian(info, static_cast<uint32_t>(tensor_name.size()), 4);
  info.append(tensor_name.data(), tensor_name.size());
  return HkdfSha256(shared_secret, /*salt=*/"", info, kMaskSeedBytes);
}

}  // namespace crypto
}  // namespace tessera

// File: prg.h
// The pseudorandom generator that expands a 32-byte seed into a secure
// aggregation mask: the AES-256-CTR keystream under key = seed, starting from
// counter block 0 (all-zero IV), so masks are deterministic per seed and
// identical on every platform. DeriveMaskSeed gives each (session, round,
// tensor) its own seed, so no keystream is ever reused.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::string seed,
//       crypto::DeriveMaskSeed(shared_secret, session_id, round, "dense/w"));
//   TESSERA_ASSIGN_OR_RETURN(crypto::MaskPrg prg,
//   crypto::MaskPrg::Create(seed)); std::vector<uint32_t> mask(n);
//   prg.FillUint32(absl::MakeSpan(mask));
#ifndef TESSERA_PRIVACY_CRYPTO_PRG_H_
#define TESSERA_PRIVACY_CRYPTO_PRG_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tessera {
namespace crypto {

inline constexpr size_t kMaskSeedBytes = 32;

// The info string DeriveMaskSeed passes to HKDF, before its encoded fields.
inline constexpr absl::string_view kMaskSeedInfoLabel =
    "tessera/secagg/mask-seed/v1";

// A stream of pseudorandom bytes. Successive Fill calls continue the stream,
// so Fill(a) then Fill(b) equals one Fill of |a| + |b| bytes. Not thread-safe;
// movable, not copyable. A moved-from MaskPrg may only be destroyed or
// assigned to. Fill* abort the process only if OpenSSL fails on a context it
// has already initialised (a broken OpenSSL install), as Sha256 does.
class MaskPrg {
 public:
  // A generator keyed by `seed32`, with the counter starting at 0.
  // Errors: INVALID_ARGUMENT unless `seed32` is 32 bytes; INTERNAL if OpenSSL
  // fails.
  static absl::StatusOr<MaskPrg> Create(absl::string_view seed32);

  // As Create with an explicit 16-byte initial counter block (big-endian
  // counter, incremented per block), for known-answer tests against
  // NIST SP 800-38A.
  static absl::StatusOr<MaskPrg> CreateWithCounter(absl::string_view seed32,
                                                   absl::string_view iv16);

  ~MaskPrg();
  MaskPrg(MaskPrg&& other) noexcept;
  MaskPrg& operator=(MaskPrg&& other) noexcept;
  MaskPrg(const MaskPrg&) = delete;
  MaskPrg& operator=(const MaskPrg&) = delete;

  // Overwrites `out` with the next out.size() keystream bytes.
  void Fill(absl::Span<uint8_t> out);

  // Overwrites `out` with the next 4 * out.size() keystream bytes, read as
  // little-endian words (uniform over uint32, i.e. masks mod 2^32).
  void FillUint32(absl::Span<uint32_t> out);

  // As FillUint32 with 8-byte little-endian words (masks mod 2^64).
  void FillUint64(absl::Span<uint64_t> out);

 private:
  struct Impl;
  explicit MaskPrg(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The 32-byte PRG seed for one tensor of one round:
//   HKDF-SHA256(ikm = shared_secret, salt = "",
//               info = kMaskSeedInfoLabel || u32be(|session_id|) ||
//                      session_id || u32be(round) ||
//                      u32be(|tensor_name|) || tensor_name,
//               length = 32)
// Lengths are prefixed so distinct (session, round, tensor) triples never
// produce the same info string.
// Errors: INVALID_ARGUMENT if `shared_secret` is empty, or `session_id` or
// `tensor_name` is 4 GiB or longer; INTERNAL if OpenSSL fails.
absl::StatusOr<std::string> DeriveMaskSeed(absl::string_view shared_secret,
                                           absl::string_view session_id,
                                           uint32_t round,
                                           absl::string_view tensor_name);

}  // namespace crypto
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_PRG_H_

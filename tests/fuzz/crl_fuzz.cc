// File: crl_fuzz.cc
// Fuzzes certificate revocation list decoding: ReadRevocationList against the fixed test CA
// (fuzz_pki.h), and the CRL as the coordinator loads it (TrustAnchors) to check its client
// certificate.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/strings/string_view.h"
#include "privacy/crypto/certificate_chain.h"
#include "privacy/crypto/pki.h"
#include "tests/fuzz/fuzz_pki.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  const absl::string_view pem(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<crypto::RevocationList> list = crypto::ReadRevocationList(pem, fuzz::kFuzzCaPem);
  fuzz::Report(list.status());
  if (list.ok()) {
    for (const crypto::RevokedCertificate& r : list->revoked) {
      fuzz::Check(!r.serial_hex.empty(), "revoked serials are named");
    }
  }
  absl::StatusOr<std::shared_ptr<const crypto::TrustAnchors>> anchors =
      crypto::TrustAnchors::Create(fuzz::kFuzzCaPem, pem);
  if (anchors.ok()) fuzz::Report((*anchors)->Verify(fuzz::kFuzzClientPem));
  return 0;
}

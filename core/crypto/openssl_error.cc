#include "core/crypto/openssl_error.h"

#include <openssl/err.h>

#include "absl/strings/str_cat.h"

namespace tessera {
namespace crypto_internal {

std::string DrainOpenSslErrors() {
  std::string out;
  char buf[256];
  for (unsigned long err = ERR_get_error(); err != 0; err = ERR_get_error()) {
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

void ClearOpenSslErrors() { ERR_clear_error(); }

absl::Status OpenSslError(absl::StatusCode code, absl::string_view what) {
  const std::string errors = DrainOpenSslErrors();
  if (errors.empty()) return absl::Status(code, what);
  return absl::Status(code, absl::StrCat(what, ": ", errors));
}

}  // namespace crypto_internal
}  // namespace tessera

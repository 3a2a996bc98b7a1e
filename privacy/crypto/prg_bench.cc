// tessera-bench-prg: MaskPrg keystream throughput next to raw OpenSSL EVP aes-256-ctr on
// the same buffer in the same run. It lives in privacy/crypto because it includes OpenSSL.
//
//   tessera-bench-prg --mib=64 --repeats=5
//
// MaskPrg::FillUint64 zeroes the buffer and encrypts it in place (CTR XORs the keystream
// into zeros). "raw EVP" is EVP_EncryptUpdate in place over the buffer without the zeroing;
// "raw EVP + memset" does the zeroing too, i.e. the same work as MaskPrg minus the wrapper.
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/types/span.h"
#include "core/base/program_flags.h"
#include "privacy/crypto/prg.h"

ABSL_FLAG(int32_t, mib, 64, "buffer size in MiB");
ABSL_FLAG(int32_t, repeats, 5, "timed repetitions (best is reported)");

namespace tessera::crypto {
namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double BestGbPerS(size_t bytes, int repeats, F&& f) {
  double best = 0;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    f();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(bytes) / s / 1e9);
  }
  return best;
}

void Run() {
  const size_t bytes = static_cast<size_t>(absl::GetFlag(FLAGS_mib)) << 20;
  const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
  const std::string key(32, '\x11');
  std::vector<uint64_t> buf(bytes / 8, 0);
  auto* p = reinterpret_cast<unsigned char*>(buf.data());

  auto prg = MaskPrg::Create(key);
  if (!prg.ok()) {
    std::fprintf(stderr, "MaskPrg::Create: %s\n", prg.status().ToString().c_str());
    std::exit(1);
  }
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  static constexpr unsigned char kIv[16] = {};
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), nullptr,
                         reinterpret_cast<const unsigned char*>(key.data()), kIv) != 1) {
    std::fprintf(stderr, "EVP_EncryptInit_ex(aes-256-ctr) failed\n");
    std::exit(1);
  }
  auto raw = [&] {
    for (size_t done = 0; done < bytes;) {
      const size_t piece = std::min<size_t>(bytes - done, size_t{1} << 30);
      int written = 0;
      if (EVP_EncryptUpdate(ctx, p + done, &written, p + done, static_cast<int>(piece)) != 1) {
        std::fprintf(stderr, "EVP_EncryptUpdate failed\n");
        std::exit(1);
      }
      done += piece;
    }
  };

  prg->FillUint64(absl::MakeSpan(buf));  // fault the pages in
  const double g_prg =
      BestGbPerS(bytes, repeats, [&] { prg->FillUint64(absl::MakeSpan(buf)); });
  const double g_raw = BestGbPerS(bytes, repeats, raw);
  const double g_raw_memset = BestGbPerS(bytes, repeats, [&] {
    std::memset(p, 0, bytes);
    raw();
  });
  const double g_prg2 =
      BestGbPerS(bytes, repeats, [&] { prg->FillUint64(absl::MakeSpan(buf)); });
  EVP_CIPHER_CTX_free(ctx);

  std::printf("== MaskPrg vs raw OpenSSL (%s), %zu MiB buffer, best of %d ==\n",
              OpenSSL_version(OPENSSL_VERSION), bytes >> 20, repeats);
  std::printf("%-40s %8s\n", "operation", "GB/s");
  std::printf("%-40s %8.2f\n", "MaskPrg::FillUint64 (run 1)", g_prg);
  std::printf("%-40s %8.2f\n", "raw EVP aes-256-ctr in place", g_raw);
  std::printf("%-40s %8.2f\n", "raw EVP aes-256-ctr + memset(0)", g_raw_memset);
  std::printf("%-40s %8.2f\n", "MaskPrg::FillUint64 (run 2)", g_prg2);
  std::printf("MaskPrg / raw EVP+memset: %.2f; MaskPrg / raw EVP: %.2f\n",
              std::max(g_prg, g_prg2) / g_raw_memset, std::max(g_prg, g_prg2) / g_raw);
}

}  // namespace
}  // namespace tessera::crypto

int main(int argc, char** argv) {
  tessera::ParseProgramFlags(argc, argv,
                             "MaskPrg keystream throughput next to raw OpenSSL EVP aes-256-ctr "
                             "on the same buffer in the same run.");
  tessera::crypto::Run();
  return 0;
}

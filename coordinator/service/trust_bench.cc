// tessera-bench-trust: what checking a client certificate costs, next to parsing it
// (ParseCertificateIdentity, the baseline every RPC paid before revocation checks) in the
// same run, for CRLs of 0, 1,000 and 10,000 revoked serials: the first verification (TLS
// handshake: chain, validity, CRL) and the per-RPC re-check (TrustStore::Verify: two file
// stats and a cache lookup).
//
//   tessera-bench-trust [--benchmark_min_time=0.5]
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "coordinator/service/trust_store.h"
#include "absl/strings/str_cat.h"
#include "core/base/benchmark_main.h"
#include "core/base/file.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/pki.h"

namespace tessera::coordinator {
namespace {

struct Fixture {
  explicit Fixture(int revoked) {
    char tmpl[] = "/tmp/tessera-bench-trust.XXXXXX";
    dir = ::mkdtemp(tmpl);
    ca = crypto::CreateCertificateAuthority("Bench", 30).value();
    cert = crypto::IssueCertificate(ca, crypto::GeneratePrivateKey().value(),
                                    {crypto::CertificateRole::kClient, "site-a", "", {}, 30})
               .value();
    crypto::RevocationList list;
    for (int i = 0; i < revoked; ++i) list.revoked.push_back({absl::StrCat("1", i), 1700000000});
    (void)WriteFileAtomically(dir + "/ca.pem", ca.certificate_pem, 0644, true);
    (void)WriteFileAtomically(dir + "/crl.pem", crypto::CreateRevocationList(ca, list, 7).value(),
                              0644, true);
    store = TrustStore::Open(dir + "/ca.pem", dir + "/crl.pem").value();
  }
  std::string dir, cert;
  crypto::KeyAndCertificate ca;
  std::unique_ptr<TrustStore> store;
};

void BM_ParseIdentity(benchmark::State& state) {
  Fixture f(0);
  for (auto _ : state) benchmark::DoNotOptimize(crypto::ParseCertificateIdentity(f.cert));
}
BENCHMARK(BM_ParseIdentity);

// A certificate seen for the first time (the TLS handshake): chain, validity and CRL.
void BM_FirstVerify(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  auto anchors = crypto::TrustAnchors::Create(f.ca.certificate_pem,
                                              ReadFileToString(f.dir + "/crl.pem").value())
                     .value();
  for (auto _ : state) {
    absl::Status s = anchors->Verify(f.cert);
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
  }
  state.counters["revoked"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_FirstVerify)->Arg(0)->Arg(1000)->Arg(10000);

// The per-RPC check of a certificate already verified: file stats and a cache lookup.
void BM_TrustStoreVerify(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    absl::Status s = f.store->Verify(f.cert).status();
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
  }
  state.counters["revoked"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_TrustStoreVerify)->Arg(0)->Arg(1000)->Arg(10000);

}  // namespace
}  // namespace tessera::coordinator

int main(int argc, char** argv) {
  return tessera::BenchmarkMain(
      argc, argv,
      "What checking a client certificate costs (TLS handshake verification and the per-RPC "
      "re-check) next to parsing it, for CRLs of 0, 1,000 and 10,000 revoked serials.");
}

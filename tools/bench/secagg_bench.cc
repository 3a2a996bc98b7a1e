// tessera-bench-secagg: secure aggregation cost, driving real SecAggClient and SecAggServer
// objects in one process (no network), plus the mask keystream throughput.
//
//   tessera-bench-secagg                        # default grid, < ~3 min on 2 cores
//   tessera-bench-secagg --full                 # also n=500, d=1M (4 GB of inputs, slow)
//   tessera-bench-secagg --n=500 --d=100000 --dropout=0.3
//
// Part 1, per (n, d, dropout) cell. Every client runs the whole protocol. Dropout is
// applied after ShareKeys: the dropped clients never answer the MaskedInputRequest, so the
// server must reconstruct their s_sk from Shamir shares and remove the pairwise masks
// their surviving neighbours added (the expensive case). Reported:
//   - client mask ms: wall time of the SecAggClient::HandleMessage that turns the
//     MaskedInputRequest into the MaskedInput (share decryption, k pairwise PRG
//     expansions, one self-mask expansion, the copy into the message); median and max
//     over all surviving clients.
//   - server ingest ms: SecAggServer::HandleMessage of one MaskedInput (adding it into the
//     running sum), median.
//   - server unmask s: the SecAggServer::AdvancePhase that closes Unmasking (Shamir
//     reconstruction of every survivor's self-mask seed and every dropped client's s_sk,
//     removal of the self masks and of the dropped clients' pairwise masks).
// k and t are what DeriveParams chose for the threat model {n, dropout, corrupt 0.1}, as
// the server announced them in the roster. The result is checked against the plain sum.
//
// Part 3 (--roster_n): what a client pays to check a roster of n certificate identities
// (chain to the CA, CRL of --roster_revoked serials, role, signature): the first roster of
// a verifier (every chain checked) and the next one with the same peers (chains cached),
// next to the bare signature checks as the floor.
//
// Part 2: MaskPrg::FillUint64 GB/s over a 64 MiB buffer next to memset and memcpy of the
// same buffer. The raw OpenSSL AES-256-CTR comparison is tessera-bench-prg
// (privacy/crypto/prg_bench.cc), since only privacy/crypto includes OpenSSL.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/base/program_flags.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/pki.h"
#include "privacy/crypto/prg.h"
#include "privacy/crypto/random.h"
#include "privacy/crypto/signature.h"
#include "privacy/secagg/client/secagg_client.h"
#include "privacy/secagg/identity.h"
#include "privacy/secagg/secagg_params.h"
#include "privacy/secagg/server/secagg_server.h"

ABSL_FLAG(std::string, n, "10,100,500", "comma-separated client counts");
ABSL_FLAG(std::string, d, "100000,1000000", "comma-separated parameter counts");
ABSL_FLAG(std::string, dropout, "0,0.1,0.3",
          "comma-separated dropout fractions (threat model and actual dropout)");
ABSL_FLAG(double, corrupt, 0.1, "corrupt fraction of the threat model");
ABSL_FLAG(bool, full, false,
          "also run cells with n * d > --max-default-elems (n=500, d=1M: minutes)");
ABSL_FLAG(int64_t, max_default_elems, 100'000'000,
          "without --full, skip cells whose n * d exceeds this");
ABSL_FLAG(double, max_memory_gb, 16.0,
          "skip cells whose estimated peak memory exceeds this");
ABSL_FLAG(int32_t, modulus_bits, 32, "values live mod 2^b");
ABSL_FLAG(bool, skip_protocol, false, "skip part 1");
ABSL_FLAG(bool, skip_prg, false, "skip part 2");
ABSL_FLAG(std::string, roster_n, "100,500", "part 3: roster sizes (empty: skip part 3)");
ABSL_FLAG(int32_t, roster_revoked, 1000, "part 3: serials on the CRL");
ABSL_FLAG(int32_t, prg_mib, 64, "part 2 buffer size in MiB");
ABSL_FLAG(int32_t, prg_repeats, 5, "part 2 repetitions (best is reported)");

namespace tessera {
namespace {

using Clock = std::chrono::steady_clock;
using secagg::SecAggClient;
using secagg::SecAggServer;

constexpr char kSession[] = "bench-session";
constexpr uint32_t kRound = 1;
constexpr char kTensor[] = "w";

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

[[noreturn]] void Die(absl::string_view what, const absl::Status& s) {
  std::fprintf(stderr, "FATAL: %s: %s\n", std::string(what).c_str(), s.ToString().c_str());
  std::exit(1);
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

template <typename T>
std::vector<T> ParseList(absl::string_view flag, absl::string_view text) {
  std::vector<T> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    T v{};
    bool ok = false;
    if constexpr (std::is_floating_point_v<T>) {
      ok = absl::SimpleAtod(part, &v);
    } else {
      ok = absl::SimpleAtoi(part, &v);
    }
    if (!ok) {
      std::fprintf(stderr, "bad --%s entry '%s'\n", std::string(flag).c_str(),
                   std::string(part).c_str());
      std::exit(2);
    }
    out.push_back(v);
  }
  return out;
}

// Client i's input, regenerated on demand (for the correctness check) rather than kept.
std::vector<uint64_t> MakeInput(uint32_t client, size_t dim, uint64_t mask) {
  std::vector<uint64_t> v(dim);
  uint64_t s = 0x9E3779B97F4A7C15ull * (client + 1);
  for (uint64_t& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = (s >> 17) & mask;
  }
  return v;
}

struct CellResult {
  std::string skipped;  // non-empty: why the cell did not run
  uint32_t k = 0, t = 0;
  bool complete = false;
  uint32_t dropped = 0;
  double client_mask_median_ms = 0, client_mask_max_ms = 0;
  double server_ingest_median_ms = 0;
  double server_unmask_s = 0;
  double consistency_s = 0;  // all clients: sign the survivor set, check t signatures
  double total_s = 0;
  bool correct = false;
};

CellResult RunCell(uint32_t n, size_t dim, double dropout, double corrupt,
                   uint32_t modulus_bits) {
  CellResult r;
  const auto start = Clock::now();
  const uint64_t mask = (uint64_t{1} << modulus_bits) - 1;
  secagg::ThreatModel model{.num_clients = n, .dropout_fraction = dropout,
                            .corrupt_fraction = corrupt};
  absl::StatusOr<secagg::SecAggParams> params = secagg::DeriveParams(model);
  if (!params.ok()) {
    r.skipped = absl::StrCat("DeriveParams: ", params.status().message());
    return r;
  }

  std::vector<crypto::Ed25519Signer> signers;
  signers.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    auto s = crypto::Ed25519Signer::Generate();
    if (!s.ok()) Die("Ed25519Signer::Generate", s.status());
    signers.push_back(*std::move(s));
  }
  secagg::VerifyFn verify = [&signers](uint32_t i, const secagg::v1::Identity& id,
                                       absl::string_view m, absl::string_view sig) {
    if (i >= signers.size()) return absl::NotFoundError("unknown client");
    if (id.ed25519_public_key() != signers[i].public_key()) {
      return absl::PermissionDeniedError("not this client's identity");
    }
    return crypto::Ed25519Verify(signers[i].public_key(), m, sig);
  };
  secagg::ServerConfig sc{.session_id = kSession, .round = kRound, .threat_model = model,
                          .modulus_mask = mask, .tensors = {{kTensor, dim}},
                          .verify = verify};
  auto server_or = SecAggServer::Create(std::move(sc));
  if (!server_or.ok()) Die("SecAggServer::Create", server_or.status());
  std::unique_ptr<SecAggServer> server = *std::move(server_or);

  std::vector<std::unique_ptr<SecAggClient>> clients;
  clients.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    secagg::ClientConfig cc;
    cc.client_index = i;
    cc.session_id = kSession;
    cc.round = kRound;
    cc.modulus_mask = mask;
    cc.inputs = {{kTensor, MakeInput(i, dim, mask)}};
    cc.weight = 1;
    cc.sign = [&signers, i](absl::string_view m) { return signers[i].Sign(m); };
    cc.identity.set_ed25519_public_key(signers[i].public_key());
    cc.verify = verify;
    cc.threat_model = model;
    cc.max_clients = n;
    auto c = SecAggClient::Create(std::move(cc));
    if (!c.ok()) Die("SecAggClient::Create", c.status());
    clients.push_back(*std::move(c));
  }

  // Delivers the server's outbox to the clients not in `silent` and the replies back to
  // the server. Returns the per-client (client handle, server handle) seconds.
  auto deliver = [&](const std::vector<bool>& silent, std::vector<double>* client_s,
                     std::vector<double>* server_s) {
    for (auto& [to, msg] : server->TakeOutgoing()) {
      if (silent[to]) continue;
      const auto t0 = Clock::now();
      auto reply = clients[to]->HandleMessage(msg);
      const auto t1 = Clock::now();
      if (!reply.ok()) Die(absl::StrCat("client ", to, " HandleMessage"), reply.status());
      if (client_s != nullptr) client_s->push_back(Seconds(t0, t1));
      if (!reply->has_value()) continue;
      const auto t2 = Clock::now();
      absl::Status s = server->HandleMessage(to, **reply);
      const auto t3 = Clock::now();
      if (!s.ok()) Die(absl::StrCat("server HandleMessage from ", to), s);
      if (server_s != nullptr) server_s->push_back(Seconds(t2, t3));
    }
  };
  auto advance = [&](absl::string_view phase) {
    absl::Status s = server->AdvancePhase();
    if (!s.ok()) Die(absl::StrCat("AdvancePhase closing ", phase), s);
  };

  // AdvertiseKeys.
  for (uint32_t i = 0; i < n; ++i) {
    auto adv = clients[i]->Start();
    if (!adv.ok()) Die("client Start", adv.status());
    absl::Status s = server->HandleMessage(i, *adv);
    if (!s.ok()) Die("server HandleMessage(advertise)", s);
  }
  advance("AdvertiseKeys");
  std::vector<bool> silent(n, false);
  deliver(silent, nullptr, nullptr);  // roster -> ShareKeys
  advance("ShareKeys");
  const secagg::SecAggStatus st = server->Status();
  r.k = st.degree_k;
  r.t = st.threshold_t;
  r.complete = st.degree_k + 1 == n;

  // Drop after ShareKeys: a deterministic random subset never sends masked input.
  r.dropped = static_cast<uint32_t>(std::floor(dropout * n + 1e-9));
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937 rng(n * 31 + static_cast<uint32_t>(dim));
  std::shuffle(order.begin(), order.end(), rng);
  for (uint32_t j = 0; j < r.dropped; ++j) silent[order[j]] = true;

  std::vector<double> client_mask, server_ingest;
  deliver(silent, &client_mask, &server_ingest);  // MaskedInputRequest -> MaskedInput
  advance("MaskedInputCollection");
  // ConsistencyRequest -> signatures -> UnmaskRequest (t signatures checked by each client)
  // -> UnmaskResponse.
  const auto c0 = Clock::now();
  deliver(silent, nullptr, nullptr);
  advance("ConsistencyCheck");
  deliver(silent, nullptr, nullptr);
  r.consistency_s = Seconds(c0, Clock::now());
  const auto u0 = Clock::now();
  advance("Unmasking");
  const auto u1 = Clock::now();
  r.server_unmask_s = Seconds(u0, u1);
  r.client_mask_median_ms = 1e3 * Median(client_mask);
  r.client_mask_max_ms =
      client_mask.empty() ? 0 : 1e3 * *std::max_element(client_mask.begin(), client_mask.end());
  r.server_ingest_median_ms = 1e3 * Median(server_ingest);

  auto result = server->Result();
  if (!result.ok()) Die("server Result", result.status());
  std::vector<uint64_t> expect(dim, 0);
  uint64_t weight = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (silent[i]) continue;
    const std::vector<uint64_t> in = MakeInput(i, dim, mask);
    for (size_t j = 0; j < dim; ++j) expect[j] = (expect[j] + in[j]) & mask;
    weight = (weight + 1) & mask;
  }
  r.correct = result->sums.size() == 1 && result->sums[0].values == expect &&
              result->weight_sum == weight && result->survivors.size() == n - r.dropped;
  r.total_s = Seconds(start, Clock::now());
  return r;
}

void RunProtocol() {
  const auto ns = ParseList<uint32_t>("n", absl::GetFlag(FLAGS_n));
  const auto ds = ParseList<int64_t>("d", absl::GetFlag(FLAGS_d));
  const auto drops = ParseList<double>("dropout", absl::GetFlag(FLAGS_dropout));
  const double corrupt = absl::GetFlag(FLAGS_corrupt);
  const int32_t bits = absl::GetFlag(FLAGS_modulus_bits);
  if (bits < 1 || bits > 62) {
    std::fprintf(stderr, "--modulus_bits must be in 1..62\n");
    std::exit(2);
  }
  std::printf("== Part 1: SecAgg+ round, in-process (threat model corrupt %.2f, dropout as "
              "listed; dropout applied after ShareKeys; mod 2^%d; 1 tensor of d values) ==\n",
              corrupt, bits);
  std::printf("%5s %8s %5s %5s %4s %4s %8s %10s %10s %10s %10s %10s %8s %6s\n", "n", "d",
              "drop", "#drop", "k", "t", "graph", "cli_mask", "cli_mask", "srv_ingest",
              "consist", "srv_unmask", "cell", "check");
  std::printf("%5s %8s %5s %5s %4s %4s %8s %10s %10s %10s %10s %10s %8s %6s\n", "", "", "",
              "", "", "", "", "med ms", "max ms", "med ms", "all s", "s", "total s", "");
  std::vector<std::string> notes;
  for (int64_t d : ds) {
    for (uint32_t n : ns) {
      for (double drop : drops) {
        const double elems = static_cast<double>(n) * static_cast<double>(d);
        // Inputs live in the clients until the round ends (n * d * 8), plus per survivor a
        // transient copy, the MaskedInput message and the server's sum (a few d * 8).
        const double est_gb = (elems * 8 + 6.0 * static_cast<double>(d) * 8) / 1e9;
        std::string skip;
        if (est_gb > absl::GetFlag(FLAGS_max_memory_gb)) {
          skip = absl::StrCat("est. ", est_gb, " GB > --max_memory_gb");
        } else if (!absl::GetFlag(FLAGS_full) &&
                   elems > static_cast<double>(absl::GetFlag(FLAGS_max_default_elems))) {
          skip = absl::StrCat("n*d > ", absl::GetFlag(FLAGS_max_default_elems),
                              " (est. ", est_gb, " GB inputs); run with --full");
        }
        CellResult r;
        if (skip.empty()) {
          r = RunCell(n, static_cast<size_t>(d), drop, corrupt, static_cast<uint32_t>(bits));
          skip = r.skipped;
        }
        if (!skip.empty()) {
          std::printf("%5u %8lld %4.0f%% %5s %4s %4s %8s  skipped: %s\n", n,
                      static_cast<long long>(d), 100 * drop, "-", "-", "-", "-",
                      skip.c_str());
          std::fflush(stdout);
          continue;
        }
        std::printf(
            "%5u %8lld %4.0f%% %5u %4u %4u %8s %10.1f %10.1f %10.2f %10.3f %10.3f %8.1f %6s\n",
            n, static_cast<long long>(d), 100 * drop, r.dropped, r.k, r.t,
            r.complete ? "complete" : "sparse", r.client_mask_median_ms, r.client_mask_max_ms,
            r.server_ingest_median_ms, r.consistency_s, r.server_unmask_s, r.total_s,
            r.correct ? "ok" : "WRONG");
        std::fflush(stdout);
        if (!r.correct) notes.push_back(absl::StrCat("n=", n, " d=", d, ": WRONG SUM"));
      }
    }
  }
  std::printf(
      "Reference: CCS 2017 Java prototype: ~143 s server for n=500, d=100k, 30%% dropout; "
      "goal here < 5 s.\n"
      "Goal: per-client masking for d=1M < 0.5 s.\n"
      "k, t: from DeriveParams (complete graph for n <= %u); forcing the complete graph is "
      "not possible through the SecAggServer API, so there is no --complete-graph flag.\n"
      "Server unmasking uses one thread per core (up to 8); cli_mask includes decrypting the k key shares.\n",
      secagg::kCompleteGraphMaxClients);
  for (const std::string& note : notes) std::printf("NOTE: %s\n", note.c_str());
}

template <typename F>
double BestGbPerS(size_t bytes, int repeats, F&& f) {
  double best = 0;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    f();
    const double s = Seconds(t0, Clock::now());
    best = std::max(best, static_cast<double>(bytes) / s / 1e9);
  }
  return best;
}

void RunPrg() {
  const size_t bytes = static_cast<size_t>(absl::GetFlag(FLAGS_prg_mib)) << 20;
  const int repeats = std::max(1, absl::GetFlag(FLAGS_prg_repeats));
  std::vector<uint64_t> buf(bytes / 8, 1), src(bytes / 8, 2);
  auto prg = crypto::MaskPrg::Create(std::string(32, '\x11'));
  if (!prg.ok()) Die("MaskPrg::Create", prg.status());
  std::printf("\n== Part 2: mask keystream, %zu MiB uint64 buffer, best of %d ==\n",
              bytes >> 20, repeats);
  // Warm the pages first so no run pays the page faults.
  prg->FillUint64(absl::MakeSpan(buf));
  const double g_prg = BestGbPerS(bytes, repeats,
                                  [&] { prg->FillUint64(absl::MakeSpan(buf)); });
  const double g_memset = BestGbPerS(bytes, repeats, [&] {
    std::memset(buf.data(), repeats, bytes);
  });
  const double g_memcpy = BestGbPerS(bytes, repeats, [&] {
    std::memcpy(buf.data(), src.data(), bytes);
  });
  uint64_t sink = 0;
  for (size_t i = 0; i < buf.size(); i += 4096) sink ^= buf[i];
  std::printf("%-34s %8s\n", "operation", "GB/s");
  std::printf("%-34s %8.2f\n", "MaskPrg::FillUint64 (AES-256-CTR)", g_prg);
  std::printf("%-34s %8.2f\n", "memset (write baseline)", g_memset);
  std::printf("%-34s %8.2f\n", "memcpy (bytes copied)", g_memcpy);
  std::printf("(sink %llu) Raw OpenSSL EVP aes-256-ctr on the same buffer: see "
              "tessera-bench-prg (privacy/crypto/prg_bench.cc).\n",
              static_cast<unsigned long long>(sink & 1));
}

}  // namespace

void RunRoster() {
  const auto ns = ParseList<uint32_t>("roster_n", absl::GetFlag(FLAGS_roster_n));
  auto ca = crypto::CreateCertificateAuthority("bench", 1);
  if (!ca.ok()) Die("CreateCertificateAuthority", ca.status());
  crypto::RevocationList list;
  list.number = 1;
  for (int32_t i = 0; i < absl::GetFlag(FLAGS_roster_revoked); ++i) {
    list.revoked.push_back({crypto::RandomHexId(16), 1700000000});
  }
  auto crl = crypto::CreateRevocationList(*ca, list, 7);
  if (!crl.ok()) Die("CreateRevocationList", crl.status());
  std::printf("\n== Part 3: roster identity checks per client (P-256 certificates, CRL of %d "
              "serials) ==\n", absl::GetFlag(FLAGS_roster_revoked));
  std::printf("%5s %12s %12s %12s %10s\n", "n", "first s", "cached s", "sigs only s",
              "first/sigs");
  for (uint32_t n : ns) {
    std::vector<secagg::v1::Identity> ids(n);
    std::vector<std::string> payloads(n), sigs(n);
    for (uint32_t i = 0; i < n; ++i) {
      auto key = crypto::GeneratePrivateKey();
      if (!key.ok()) Die("GeneratePrivateKey", key.status());
      crypto::IssueOptions o;
      o.common_name = absl::StrCat("site-", i);
      auto pem = crypto::IssueCertificate(*ca, *key, o);
      if (!pem.ok()) Die("IssueCertificate", pem.status());
      ids[i].set_certificate_pem(*pem);
      payloads[i] = secagg::AdvertisePayload(kSession, kRound, i, std::string(32, 'c'),
                                             std::string(32, 's'));
      auto sig = crypto::SignWithPrivateKeyPem(*key, payloads[i]);
      if (!sig.ok()) Die("SignWithPrivateKeyPem", sig.status());
      sigs[i] = *std::move(sig);
    }
    auto trust = secagg::FixedTrustSource(ca->certificate_pem, *crl);
    if (!trust.ok()) Die("FixedTrustSource", trust.status());
    const secagg::VerifyFn verify = secagg::CertificateVerifier(*trust);
    auto pass = [&] {
      const auto t0 = Clock::now();
      for (uint32_t i = 0; i < n; ++i) {
        absl::Status s = verify(i, ids[i], payloads[i], sigs[i]);
        if (!s.ok()) Die("verify", s);
      }
      return Seconds(t0, Clock::now());
    };
    const double first = pass();
    const double cached = pass();
    const auto t0 = Clock::now();
    for (uint32_t i = 0; i < n; ++i) {
      absl::Status s =
          crypto::VerifyWithCertificate(ids[i].certificate_pem(), payloads[i], sigs[i]);
      if (!s.ok()) Die("VerifyWithCertificate", s);
    }
    const double floor_s = Seconds(t0, Clock::now());
    std::printf("%5u %12.3f %12.3f %12.3f %10.2f\n", n, first, cached, floor_s,
                first / floor_s);
    std::fflush(stdout);
  }
  std::printf("Goal: n = 500 under 0.5 s per client.\n");
}

}  // namespace tessera

int main(int argc, char** argv) {
  tessera::ParseProgramFlags(argc, argv,
                             "Secure aggregation cost: the protocol in-process (part 1), the "
                             "mask keystream (part 2), roster identity checks (part 3).");
  if (!absl::GetFlag(FLAGS_skip_protocol)) tessera::RunProtocol();
  if (!absl::GetFlag(FLAGS_skip_prg)) tessera::RunPrg();
  if (!absl::GetFlag(FLAGS_roster_n).empty()) tessera::RunRoster();
  return 0;
}

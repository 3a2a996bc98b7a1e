#include "privacy/crypto/tls_stream_baseline.h"

#include <stdlib.h>

#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/pki.h"

namespace tessera::crypto {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A CA, a coordinator certificate and two client certificates in a fresh directory, plus a
// client certificate issued by a second, unrelated CA.
class RawTlsRoundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/tls_baseline_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    absl::StatusOr<KeyAndCertificate> ca = CreateCertificateAuthority("Bench", 30);
    absl::StatusOr<KeyAndCertificate> other = CreateCertificateAuthority("Other", 30);
    ASSERT_TRUE(ca.ok() && other.ok());
    Write("ca.pem", ca->certificate_pem);
    IssueOptions server;
    server.role = CertificateRole::kCoordinator;
    server.common_name = "coordinator";
    server.subject_alt_names = {"IP:127.0.0.1"};
    options_.ca_path = dir_ + "/ca.pem";
    options_.server = Issue(*ca, server);
    for (const char* name : {"c0", "c1"}) {
      IssueOptions client;
      client.common_name = name;
      options_.clients.push_back(Issue(*ca, client));
    }
    IssueOptions stranger;
    stranger.common_name = "stranger";
    stranger_ = Issue(*other, stranger);
  }

  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << bytes;
  }

  TlsEndFiles Issue(const KeyAndCertificate& ca, const IssueOptions& o) {
    absl::StatusOr<std::string> key = GeneratePrivateKey();
    EXPECT_TRUE(key.ok());
    absl::StatusOr<std::string> cert = IssueCertificate(ca, *key, o);
    EXPECT_TRUE(cert.ok()) << cert.status();
    Write(o.common_name + ".key", *key);
    Write(o.common_name + ".pem", *cert);
    return {dir_ + "/" + o.common_name + ".pem", dir_ + "/" + o.common_name + ".key"};
  }

  std::string dir_;
  RawTlsRoundOptions options_;
  TlsEndFiles stranger_;
};

TEST_F(RawTlsRoundTest, EveryConnectionCarriesItsBytesBothWays) {
  // Not multiples of the 1 MiB write size, so the last partial write is counted too.
  options_.down_bytes = 3 * (1 << 20) + 5;
  options_.up_bytes = (1 << 20) + 7;
  absl::StatusOr<RawTlsRoundResult> r = TimeRawTlsRound(options_);
  ASSERT_TRUE(r.ok()) << r.status();
  // 2 connections x (3,145,733 + 1,048,583) bytes.
  EXPECT_EQ(r->bytes, 8388632u);
  EXPECT_GT(r->seconds, 0);
  EXPECT_THAT(r->version, StartsWith("TLSv1."));
  EXPECT_FALSE(r->cipher.empty());
}

TEST_F(RawTlsRoundTest, AClientOfAnotherAuthorityIsRefused) {
  options_.clients[1] = stranger_;
  options_.down_bytes = 1000;
  EXPECT_THAT(TimeRawTlsRound(options_), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(RawTlsRoundTest, ConnectionCountIsBounded) {
  options_.clients.clear();
  EXPECT_THAT(TimeRawTlsRound(options_), StatusIs(absl::StatusCode::kInvalidArgument));
  options_.clients.assign(kMaxRawTlsClients + 1, stranger_);
  EXPECT_THAT(TimeRawTlsRound(options_), StatusIs(absl::StatusCode::kInvalidArgument,
                                                  HasSubstr("1001 connections")));
}

TEST_F(RawTlsRoundTest, AMissingKeyIsNamed) {
  options_.clients[0].key_path = dir_ + "/absent.key";
  EXPECT_THAT(TimeRawTlsRound(options_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key_path")));
}

}  // namespace
}  // namespace tessera::crypto

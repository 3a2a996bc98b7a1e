#include "tools/cli/connection.h"

#include <algorithm>
#include <optional>

#include "absl/base/const_init.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/base/file.h"
#include "privacy/crypto/tls_probe.h"

namespace tessera::cli {
namespace {

ABSL_CONST_INIT absl::Mutex last_mu(absl::kConstInit);
std::optional<ConnectionOptions>& LastOptions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(last_mu) {
  static auto* last = new std::optional<ConnectionOptions>();
  return *last;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view flag) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " is required for mTLS (or --insecure for a loopback demo)"));
  }
  absl::StatusOr<std::string> bytes = ReadFileToString(path);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(), absl::StrCat(flag, ": ", bytes.status().message()));
  }
  return bytes;
}

}  // namespace

absl::StatusOr<std::unique_ptr<wire::v1::Control::Stub>> Connect(const ConnectionOptions& o) {
  {
    absl::MutexLock l(&last_mu);
    LastOptions() = o;
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (o.insecure) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> ca = ReadFile(o.ca_cert_path, "--ca");
    if (!ca.ok()) return ca.status();
    absl::StatusOr<std::string> cert = ReadFile(o.cert_path, "--cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(o.key_path, "--key");
    if (!key.ok()) return key.status();
    ssl.pem_root_certs = *ca;
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(4 << 20);
  args.SetMaxSendMessageSize(4 << 20);
  return wire::v1::Control::NewStub(grpc::CreateCustomChannel(o.coordinator, creds, args));
}

std::string DiagnoseUnavailable(const ConnectionOptions& o) {
  if (o.insecure) return "";
  crypto::TlsFailureContext c;
  c.address = o.coordinator;
  c.ca_path = o.ca_cert_path;
  c.cert_path = o.cert_path;
  c.key_path = o.key_path;
  c.timeout_ms = static_cast<int>(std::clamp(o.timeout_seconds, 0.1, 5.0) * 1000);
  return crypto::DiagnoseTlsFailure(c);
}

std::string DiagnoseLastConnection() {
  std::optional<ConnectionOptions> last;
  {
    absl::MutexLock l(&last_mu);
    last = LastOptions();
  }
  return last.has_value() ? DiagnoseUnavailable(*last) : "";
}

std::unique_ptr<grpc::ClientContext> UnaryContext(const ConnectionOptions& o) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(o.timeout_seconds * 1000)));
  return ctx;
}

}  // namespace tessera::cli

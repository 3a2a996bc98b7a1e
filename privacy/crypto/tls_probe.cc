#include "privacy/crypto/tls_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/base/file.h"
#include "core/crypto/openssl_error.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/certificate_chain.h"
#include "privacy/crypto/openssl_handles.h"

namespace tessera {
namespace crypto {
namespace {

using crypto_internal::BioPtr;
using crypto_internal::PkeyPtr;
using crypto_internal::X509Ptr;

struct SslFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  void operator()(SSL* s) const { SSL_free(s); }
};

// Closes the socket on every return.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Blocks SIGPIPE on this thread (a write to a socket the server closed raises it) and, on
// destruction, consumes one that is pending and restores the mask.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlock() {
    const timespec zero = {0, 0};
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1) sigtimedwait(&pipe_, nullptr, &zero);
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_, old_;
};

struct HostPort {
  std::string host, port;
};

absl::StatusOr<HostPort> SplitAddress(absl::string_view address) {
  for (absl::string_view scheme : {"dns:///", "dns:", "ipv4:", "ipv6:"}) {
    if (absl::ConsumePrefix(&address, scheme)) break;
  }
  HostPort hp;
  size_t colon;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("address \"", address, "\" has no port"));
    }
    hp.host = std::string(address.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("address \"", address, "\" has no port"));
    }
    hp.host = std::string(address.substr(0, colon));
  }
  hp.port = std::string(address.substr(colon + 1));
  int port = 0;
  if (!absl::SimpleAtoi(hp.port, &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("address \"", address, "\" has no port"));
  }
  return hp;
}

// A connected blocking socket whose reads and writes time out after `timeout_ms`, or the
// reason there is none.
absl::StatusOr<int> ConnectTcp(const HostPort& hp, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(hp.host.c_str(), hp.port.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", hp.host, ": ",
                                               gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, freeaddrinfo);
  std::string last = "no address";
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last = strerror(errno);
      continue;
    }
    const int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = poll(&p, 1, timeout_ms);
      if (rc == 0) {
        last = absl::StrCat("no answer within ", timeout_ms, " ms");
        close(fd);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc != 0) {
      last = strerror(errno);
      close(fd);
      continue;
    }
    fcntl(fd, F_SETFL, flags);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
  }
  return absl::UnavailableError(last);
}

absl::Status Invalid(absl::string_view what) {
  return crypto_internal::OpenSslError(absl::StatusCode::kInvalidArgument, what);
}

// The CA bundle, the certificate and the key into `ctx`.
absl::Status LoadCredentials(SSL_CTX* ctx, const TlsProbeOptions& o) {
  if (o.ca_pem.size() > INT_MAX || o.cert_pem.size() > INT_MAX || o.key_pem.size() > INT_MAX) {
    return absl::InvalidArgumentError("PEM too large");
  }
  BioPtr ca(BIO_new_mem_buf(o.ca_pem.data(), static_cast<int>(o.ca_pem.size())));
  int cas = 0;
  while (X509* x = PEM_read_bio_X509(ca.get(), nullptr, nullptr, nullptr)) {
    X509Ptr owned(x);
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x) == 1) ++cas;
  }
  crypto_internal::ClearOpenSslErrors();  // the loop ends on "no start line"
  if (cas == 0) return absl::InvalidArgumentError("the CA PEM holds no certificate");
  BioPtr cert_bio(BIO_new_mem_buf(o.cert_pem.data(), static_cast<int>(o.cert_pem.size())));
  X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return Invalid("the client certificate is not a PEM certificate");
  BioPtr key_bio(BIO_new_mem_buf(o.key_pem.data(), static_cast<int>(o.key_pem.size())));
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return Invalid("the client key is not a PEM private key");
  if (SSL_CTX_use_certificate(ctx, cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return Invalid("the client key does not match the client certificate");
  }
  // Further certificates in the file are its chain.
  while (X509* x = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, x) != 1) X509_free(x);
  }
  crypto_internal::ClearOpenSslErrors();
  return absl::OkStatus();
}

// The first alert the server sent, other than close_notify.
struct AlertSeen {
  int code = -1;
  std::string description;
};

void OnInfo(const SSL* ssl, int where, int ret) {
  if ((where & SSL_CB_READ_ALERT) == 0) return;
  auto* seen = static_cast<AlertSeen*>(SSL_get_app_data(ssl));
  if (seen == nullptr || seen->code >= 0) return;
  if ((ret & 0xff) == SSL_AD_CLOSE_NOTIFY) return;
  seen->code = ret & 0xff;
  seen->description = SSL_alert_desc_string_long(ret);
}

// Alerts that refuse the peer's certificate (RFC 8446, section 6.2).
bool IsCertificateAlert(int code) {
  switch (code) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_ACCESS_DENIED:
    case SSL_AD_CERTIFICATE_REQUIRED:
      return true;
    default:
      return false;
  }
}

void SetReadTimeout(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

std::string OpenSslReason() {
  const unsigned long e = ERR_peek_last_error();
  crypto_internal::ClearOpenSslErrors();
  if (e == 0) return "unknown TLS error";
  const char* reason = ERR_reason_error_string(e);
  return reason != nullptr ? reason : absl::StrCat("OpenSSL error ", e);
}

TlsProbeResult Result(TlsProbeOutcome outcome, std::string detail) {
  return TlsProbeResult{outcome, std::move(detail)};
}

// An I/O failure after the TCP connection: an alert, a close, a timeout or another error.
TlsProbeResult IoFailure(SSL* ssl, int rc, int saved_errno, const AlertSeen& alert,
                         bool handshake_done) {
  if (IsCertificateAlert(alert.code)) {
    crypto_internal::ClearOpenSslErrors();
    return Result(TlsProbeOutcome::kRefusedWithAlert, alert.description);
  }
  if (alert.code >= 0) {
    // Another alert: after the handshake, the server ended a connection it had just accepted
    // at the TLS level; during it, the handshake failed for a reason other than the
    // certificate.
    crypto_internal::ClearOpenSslErrors();
    const std::string detail = absl::StrCat("TLS alert \"", alert.description, "\"");
    if (handshake_done) return Result(TlsProbeOutcome::kClosedAfterHandshake, detail);
    return Result(TlsProbeOutcome::kTlsError, absl::StrCat(detail, " during the handshake"));
  }
  const int err = SSL_get_error(ssl, rc);
  if (!handshake_done && err == SSL_ERROR_SSL &&
      SSL_get_verify_result(ssl) != X509_V_OK) {
    crypto_internal::ClearOpenSslErrors();
    return Result(TlsProbeOutcome::kServerNotTrusted,
                  X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
  }
  if (err == SSL_ERROR_SYSCALL && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
    crypto_internal::ClearOpenSslErrors();
    return Result(TlsProbeOutcome::kNoAnswer, "no answer before the timeout");
  }
  const bool closed = err == SSL_ERROR_ZERO_RETURN ||
                      (err == SSL_ERROR_SYSCALL &&
                       (saved_errno == 0 || saved_errno == ECONNRESET || saved_errno == EPIPE)) ||
                      (err == SSL_ERROR_SSL &&
                       ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
  if (closed) {
    crypto_internal::ClearOpenSslErrors();
    const std::string how = saved_errno == ECONNRESET ? "connection reset" : "connection closed";
    if (handshake_done) return Result(TlsProbeOutcome::kClosedAfterHandshake, how);
    return Result(TlsProbeOutcome::kTlsError, absl::StrCat(how, " during the TLS handshake"));
  }
  return Result(TlsProbeOutcome::kTlsError, OpenSslReason());
}

// "CN=op OU=operator O=Acme serial=1f issued by CN=Acme federation CA O=Acme", from the
// certificate only.
std::string DescribePresented(const std::string& cert_pem) {
  absl::StatusOr<CertificateIdentity> id = ParseCertificateIdentity(cert_pem);
  if (!id.ok()) return "(unreadable)";
  std::string out = absl::StrCat("CN=", id->common_name);
  if (!id->organizational_unit.empty()) absl::StrAppend(&out, " OU=", id->organizational_unit);
  if (!id->organization.empty()) absl::StrAppend(&out, " O=", id->organization);
  absl::StrAppend(&out, " serial=", id->serial_hex, " issued by CN=", id->issuer_common_name);
  if (!id->issuer_organization.empty()) absl::StrAppend(&out, " O=", id->issuer_organization);
  return out;
}

// What checking the client certificate against --ca finds here (the server trusts the
// federation CA, which is what --ca normally holds). It cannot see the server's CRL.
std::string LocalCheck(const TlsFailureContext& c, const std::string& cert_pem,
                       const std::string& ca_pem) {
  const absl::Status chain = VerifyCertificateChain(cert_pem, ca_pem);
  if (!chain.ok()) {
    return absl::StrCat("; checked here against --ca ", c.ca_path, ": ", chain.message());
  }
  return absl::StrCat("; checked here, it chains to --ca ", c.ca_path,
                      " and is within its validity period, so ", c.peer,
                      " refuses it for another reason, such as its revocation list or a "
                      "different CA");
}

}  // namespace

std::string DiagnoseTlsFailure(const TlsFailureContext& c) {
  absl::StatusOr<std::string> ca = ReadFileToString(c.ca_path);
  absl::StatusOr<std::string> cert = ReadFileToString(c.cert_path);
  absl::StatusOr<std::string> key = ReadFileToString(c.key_path);
  if (!ca.ok() || !cert.ok() || !key.ok()) return "";
  TlsProbeOptions probe;
  probe.address = c.address;
  probe.ca_pem = *ca;
  probe.cert_pem = *cert;
  probe.key_pem = *key;
  probe.timeout_ms = c.timeout_ms;
  absl::StatusOr<TlsProbeResult> r = ProbeTlsServer(probe);
  if (!r.ok()) return "";
  const std::string at = absl::StrCat(c.peer, " at ", c.address);
  const std::string presented = absl::StrCat("the client certificate ", DescribePresented(*cert),
                                             " (--cert ", c.cert_path, ")");
  switch (r->outcome) {
    case TlsProbeOutcome::kUnreachable:
      return absl::StrCat("cannot reach ", at, " (", r->detail, ")");
    case TlsProbeOutcome::kServerNotTrusted:
      return absl::StrCat(at, " presented a certificate that --ca ", c.ca_path,
                          " does not trust (", r->detail, ")");
    case TlsProbeOutcome::kRefusedWithAlert:
      return absl::StrCat(at, " refused ", presented, " with TLS alert \"", r->detail, "\"",
                          LocalCheck(c, *cert, *ca));
    case TlsProbeOutcome::kClosedAfterHandshake:
      return absl::StrCat(at, " refused ", presented,
                          ": it closed the connection right after the TLS handshake (", r->detail,
                          ") without answering, as it does for a certificate it does not trust "
                          "(revoked, expired or issued by another CA; its log names the reason)",
                          LocalCheck(c, *cert, *ca));
    case TlsProbeOutcome::kNoAnswer:
    case TlsProbeOutcome::kTlsError:
      return absl::StrCat("TLS with ", at, " failed (", r->detail, ")");
    case TlsProbeOutcome::kAccepted:
      return "";
  }
  return "";
}

absl::string_view TlsProbeOutcomeName(TlsProbeOutcome outcome) {
  switch (outcome) {
    case TlsProbeOutcome::kUnreachable: return "unreachable";
    case TlsProbeOutcome::kServerNotTrusted: return "server not trusted";
    case TlsProbeOutcome::kRefusedWithAlert: return "refused with TLS alert";
    case TlsProbeOutcome::kClosedAfterHandshake: return "closed after handshake";
    case TlsProbeOutcome::kAccepted: return "accepted";
    case TlsProbeOutcome::kNoAnswer: return "no answer";
    case TlsProbeOutcome::kTlsError: return "TLS error";
  }
  return "TLS error";
}

absl::StatusOr<TlsProbeResult> ProbeTlsServer(const TlsProbeOptions& o) {
  crypto_internal::ClearOpenSslErrors();
  absl::StatusOr<HostPort> hp = SplitAddress(o.address);
  if (!hp.ok()) return hp.status();
  std::unique_ptr<SSL_CTX, SslFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr) return Invalid("SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (absl::Status s = LoadCredentials(ctx.get(), o); !s.ok()) return s;

  SigpipeBlock no_sigpipe;
  absl::StatusOr<int> fd = ConnectTcp(*hp, o.timeout_ms);
  if (!fd.ok()) return Result(TlsProbeOutcome::kUnreachable, std::string(fd.status().message()));
  Socket socket(*fd);

  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  if (ssl == nullptr) return Invalid("SSL_new failed");
  AlertSeen alert;
  SSL_set_app_data(ssl.get(), &alert);
  SSL_set_info_callback(ssl.get(), OnInfo);
  static constexpr unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_set_alpn_protos(ssl.get(), kAlpn, sizeof(kAlpn));
  // The server's certificate must name the host dialed, as gRPC checks.
  in6_addr ip;
  if (inet_pton(AF_INET, hp->host.c_str(), &ip) == 1 ||
      inet_pton(AF_INET6, hp->host.c_str(), &ip) == 1) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), hp->host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl.get(), hp->host.c_str());
    SSL_set1_host(ssl.get(), hp->host.c_str());
  }
  SSL_set_fd(ssl.get(), socket.fd());

  errno = 0;
  int rc = SSL_connect(ssl.get());
  if (rc != 1) return IoFailure(ssl.get(), rc, errno, alert, /*handshake_done=*/false);

  // A gRPC server that accepted the certificate sends its SETTINGS frame at once; one that
  // refused it closes the connection. Wait briefly for either before writing, so the
  // refusal is not a reaction to our data.
  SetReadTimeout(socket.fd(), std::min(o.timeout_ms, 300));
  char answer[64];
  errno = 0;
  rc = SSL_read(ssl.get(), answer, sizeof(answer));
  if (rc > 0) return Result(TlsProbeOutcome::kAccepted, "the server answered HTTP/2");
  const int first_errno = errno;
  const int first = SSL_get_error(ssl.get(), rc);
  if (first != SSL_ERROR_WANT_READ &&
      !(first == SSL_ERROR_SYSCALL && (first_errno == EAGAIN || first_errno == EWOULDBLOCK))) {
    return IoFailure(ssl.get(), rc, first_errno, alert, /*handshake_done=*/true);
  }
  crypto_internal::ClearOpenSslErrors();
  SetReadTimeout(socket.fd(), o.timeout_ms);

  // The HTTP/2 client preface and an empty SETTINGS frame (RFC 9113, section 3.4).
  static constexpr char kPreface[] =
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
  errno = 0;
  rc = SSL_write(ssl.get(), kPreface, sizeof(kPreface) - 1);
  if (rc <= 0) return IoFailure(ssl.get(), rc, errno, alert, /*handshake_done=*/true);
  errno = 0;
  rc = SSL_read(ssl.get(), answer, sizeof(answer));
  if (rc <= 0) return IoFailure(ssl.get(), rc, errno, alert, /*handshake_done=*/true);
  return Result(TlsProbeOutcome::kAccepted, "the server answered HTTP/2");
}

}  // namespace crypto
}  // namespace tessera

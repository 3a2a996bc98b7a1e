#include "privacy/crypto/tls_stream_baseline.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/crypto/openssl_error.h"

namespace tessera::crypto {
namespace {

constexpr size_t kWriteBytes = 1 << 20;  // the size of one SSL_write, as gRPC's chunks

struct SslFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  void operator()(SSL* s) const { SSL_free(s); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, SslFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// A TLS 1.2+ context that presents `end` and requires and verifies the peer's certificate.
absl::StatusOr<CtxPtr> MakeContext(bool server, const std::string& ca, const TlsEndFiles& end) {
  crypto_internal::ClearOpenSslErrors();
  CtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (ctx == nullptr) {
    return crypto_internal::OpenSslError(absl::StatusCode::kInternal, "SSL_CTX_new");
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1) {
    return crypto_internal::OpenSslError(absl::StatusCode::kInvalidArgument,
                                         absl::StrCat("ca_path ", ca));
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), end.cert_path.c_str()) != 1) {
    return crypto_internal::OpenSslError(absl::StatusCode::kInvalidArgument,
                                         absl::StrCat("cert_path ", end.cert_path));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), end.key_path.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return crypto_internal::OpenSslError(absl::StatusCode::kInvalidArgument,
                                         absl::StrCat("key_path ", end.key_path));
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

void SetTimeouts(int fd, int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

absl::Status Unavailable(absl::string_view what) {
  return crypto_internal::OpenSslError(absl::StatusCode::kUnavailable, what);
}

// Writes `bytes` bytes of `buffer` (repeated) to `ssl`.
absl::Status Send(SSL* ssl, const std::string& buffer, uint64_t bytes) {
  while (bytes > 0) {
    const int n = static_cast<int>(std::min<uint64_t>(bytes, buffer.size()));
    if (SSL_write(ssl, buffer.data(), n) != n) return Unavailable("SSL_write");
    bytes -= static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

// Reads exactly `bytes` bytes from `ssl` into `buffer` (overwritten), counting them.
absl::Status Receive(SSL* ssl, std::string& buffer, uint64_t bytes,
                     std::atomic<uint64_t>& received) {
  while (bytes > 0) {
    const int n = SSL_read(ssl, buffer.data(),
                           static_cast<int>(std::min<uint64_t>(bytes, buffer.size())));
    if (n <= 0) return Unavailable(absl::StrCat("SSL_read with ", bytes, " bytes to go"));
    bytes -= static_cast<uint64_t>(n);
    received += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RawTlsRoundResult> TimeRawTlsRound(const RawTlsRoundOptions& options) {
  const size_t n = options.clients.size();
  if (n == 0 || n > kMaxRawTlsClients) {
    return absl::InvalidArgumentError(absl::StrCat("clients: ", n, " connections, need 1 to ",
                                                   kMaxRawTlsClients));
  }
  auto server_ctx = MakeContext(true, options.ca_path, options.server);
  if (!server_ctx.ok()) return server_ctx.status();
  std::vector<CtxPtr> client_ctx;
  for (const TlsEndFiles& end : options.clients) {
    auto ctx = MakeContext(false, options.ca_path, end);
    if (!ctx.ok()) return ctx.status();
    client_ctx.push_back(*std::move(ctx));
  }

  Fd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listener.get() < 0 || bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      listen(listener.get(), static_cast<int>(n)) != 0 ||
      getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::UnavailableError("cannot listen on 127.0.0.1");
  }
  SetTimeouts(listener.get(), options.timeout_ms);  // accept() gives up too

  // Every end handshakes, then all wait here; the main thread starts the clock on release.
  std::barrier ready(static_cast<std::ptrdiff_t>(2 * n + 1));
  std::atomic<uint64_t> received{0};
  std::mutex mu;
  absl::Status first_error;
  std::string cipher, version;
  auto fail = [&](const absl::Status& s) {
    std::lock_guard<std::mutex> l(mu);
    if (first_error.ok()) first_error = s;
  };
  auto failed = [&] {
    std::lock_guard<std::mutex> l(mu);
    return !first_error.ok();
  };
  // One end of one connection: handshake, wait for all, then its half of the transfer.
  auto run_end = [&](bool server, SSL_CTX* ctx) {
    std::string buffer(kWriteBytes, 'x');
    Fd fd(server ? accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC)
                 : socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    SslPtr ssl;
    absl::Status s;
    if (fd.get() < 0 ||
        (!server && connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)) {
      s = absl::UnavailableError(server ? "accept failed" : "connect to 127.0.0.1 failed");
    } else {
      SetTimeouts(fd.get(), options.timeout_ms);
      ssl.reset(SSL_new(ctx));
      SSL_set_fd(ssl.get(), fd.get());
      crypto_internal::ClearOpenSslErrors();
      if ((server ? SSL_accept(ssl.get()) : SSL_connect(ssl.get())) != 1) {
        s = Unavailable(server ? "TLS handshake (server)" : "TLS handshake (client)");
      } else if (server) {
        std::lock_guard<std::mutex> l(mu);
        cipher = SSL_get_cipher_name(ssl.get());
        version = SSL_get_version(ssl.get());
      }
    }
    if (!s.ok()) fail(s);
    ready.arrive_and_wait();
    if (!s.ok() || failed()) return;
    if (server) {
      s = Send(ssl.get(), buffer, options.down_bytes);
      if (s.ok()) s = Receive(ssl.get(), buffer, options.up_bytes, received);
    } else {
      s = Receive(ssl.get(), buffer, options.down_bytes, received);
      if (s.ok()) s = Send(ssl.get(), buffer, options.up_bytes);
    }
    if (!s.ok()) fail(s);
    SSL_shutdown(ssl.get());
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i) threads.emplace_back(run_end, true, server_ctx->get());
  for (size_t i = 0; i < n; ++i) threads.emplace_back(run_end, false, client_ctx[i].get());
  ready.arrive_and_wait();
  const auto start = std::chrono::steady_clock::now();
  for (std::thread& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!first_error.ok()) return first_error;
  return RawTlsRoundResult{seconds, received.load(), cipher, version};
}

}  // namespace tessera::crypto

#include "client/runtime/grpc_transport.h"

#include <algorithm>
#include <utility>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "client/runtime/internal/fleet_channel.h"
#include "core/base/status_macros.h"
#include "core/serde/compressed_upload.h"
#include "core/serde/grpc_status.h"
#include "core/serde/tensor_stream.h"

namespace tessera {

absl::StatusOr<std::shared_ptr<FleetChannel>> MakeFleetChannel(
    const FleetChannelOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.insecure) {
    creds = grpc::InsecureChannelCredentials();
  } else if (!options.cert_path.empty()) {
    namespace gx = grpc::experimental;
    if (options.cert_refresh_seconds < 1) {
      return absl::InvalidArgumentError("--cert-refresh-seconds must be at least 1");
    }
    auto provider = std::make_shared<gx::FileWatcherCertificateProvider>(
        options.key_path, options.cert_path, options.ca_path,
        static_cast<unsigned>(options.cert_refresh_seconds));
    gx::TlsChannelCredentialsOptions tls;
    tls.set_certificate_provider(provider);
    tls.watch_root_certs();
    tls.watch_identity_key_cert_pairs();
    tls.set_verify_server_certs(true);  // chain to the CA, then the host name:
    tls.set_certificate_verifier(std::make_shared<gx::HostNameCertificateVerifier>());
    creds = gx::TlsCredentials(tls);
  } else {
    if (options.ca_pem.empty() || options.cert_pem.empty() || options.key_pem.empty()) {
      return absl::InvalidArgumentError(
          "mTLS needs the CA certificate, the client certificate and its key");
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.ca_pem;
    ssl.pem_cert_chain = options.cert_pem;
    ssl.pem_private_key = options.key_pem;
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 300);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 3000);
  auto out = std::make_shared<FleetChannel>();
  out->channel = grpc::CreateCustomChannel(options.address, creds, args);
  out->stub = wire::v1::Fleet::NewStub(out->channel);
  return out;
}

void GrpcFleetTransport::SetChannel(std::shared_ptr<FleetChannel> channel) {
  absl::MutexLock l(&mu_);
  channel_ = std::move(channel);
}

std::shared_ptr<FleetChannel> GrpcFleetTransport::channel() const {
  absl::MutexLock l(&mu_);
  return channel_;
}

GrpcFleetTransport::GrpcFleetTransport(std::shared_ptr<FleetChannel> channel,
                                       std::function<std::string()> session,
                                       std::function<bool()> stopping)
    : channel_(std::move(channel)), session_(std::move(session)), stopping_(std::move(stopping)) {
  if (!stopping_) stopping_ = [] { return false; };
}

absl::StatusOr<std::string> GrpcFleetTransport::FetchArtifact(const wire::v1::Task& task) {
  grpc::ClientContext ctx;
  PrepareFleetContext(&ctx, session_(), 600);
  wire::v1::FetchArtifactRequest req;
  req.set_task_id(task.task_id());
  auto reader = channel()->stub->FetchArtifact(&ctx, req);
  std::string program;
  wire::v1::ArtifactChunk chunk;
  std::string digest;
  while (reader->Read(&chunk)) {
    program += chunk.data();
    if (!chunk.sha256().empty()) digest = chunk.sha256();
  }
  TESSERA_RETURN_IF_ERROR(FromGrpcStatus(reader->Finish()));
  if (digest != task.model().torchscript_sha256()) {
    return absl::DataLossError("the TorchScript program does not match its SHA-256");
  }
  return program;
}

absl::StatusOr<ArrayRecord> GrpcFleetTransport::FetchModel(const wire::v1::Task& task) {
  grpc::ClientContext ctx;
  PrepareFleetContext(&ctx, session_(), std::max(60.0, task.deadline_seconds()));
  wire::v1::FetchModelRequest req;
  req.set_task_id(task.task_id());
  auto reader = channel()->stub->FetchModel(&ctx, req);
  TensorStreamLimits limits;
  limits.require_finite = true;
  TensorStreamReader stream(limits);
  wire::v1::TensorChunk chunk;
  absl::Status bad;
  while (reader->Read(&chunk)) {
    if (bad.ok()) bad = stream.Add(std::move(chunk));  // takes whole-tensor chunks' buffers
    if (!bad.ok()) ctx.TryCancel();
  }
  absl::Status rpc = FromGrpcStatus(reader->Finish());
  if (!bad.ok()) return bad;
  TESSERA_RETURN_IF_ERROR(rpc);
  // The reader checked the stream against its own trailer; the task names the model.
  if (stream.done() && stream.digest() != task.model_sha256()) {
    return absl::DataLossError("the global model does not match the task's SHA-256");
  }
  return std::move(stream).Finish();
}

absl::Status GrpcFleetTransport::PushUpdate(const wire::v1::Task& task, uint64_t num_examples,
                                            const std::map<std::string, double>& metrics,
                                            const ArrayRecord& update) {
  grpc::ClientContext ctx;
  PrepareFleetContext(&ctx, session_(), std::max(60.0, task.deadline_seconds()));
  wire::v1::PushUpdateResponse response;
  auto writer = channel()->stub->PushUpdate(&ctx, &response);
  wire::v1::PushUpdateRequest msg;
  auto* header = msg.mutable_header();
  header->set_task_id(task.task_id());
  header->set_num_examples(num_examples);
  for (const auto& [k, v] : metrics) (*header->mutable_metrics())[k] = v;
  // Encoded by CompressUpdate as the task says (docs/compression.md).
  if (IsCompressed(task.compression())) *header->mutable_compression() = task.compression();
  bool ok = writer->Write(msg);
  TensorStreamWriter stream(&update, std::nullopt, kUploadChunkBytes);
  while (ok) {
    msg.Clear();
    if (!stream.Next(msg.mutable_chunk())) break;
    ok = writer->Write(msg);
  }
  writer->WritesDone();
  return FromGrpcStatus(writer->Finish());
}

absl::Status GrpcFleetTransport::PushEvaluation(const wire::v1::Task& task,
                                                const EvalResult& eval) {
  grpc::ClientContext ctx;
  PrepareFleetContext(&ctx, session_(), 60);
  wire::v1::PushEvaluationRequest req;
  req.set_task_id(task.task_id());
  req.set_num_examples(eval.num_examples);
  req.set_loss(eval.loss);
  req.set_accuracy(eval.accuracy);
  wire::v1::PushEvaluationResponse resp;
  return FromGrpcStatus(channel()->stub->PushEvaluation(&ctx, req, &resp));
}

absl::Status GrpcFleetTransport::ReportData(const wire::v1::Task& task,
                                            const wire::v1::DataReport& report) {
  grpc::ClientContext ctx;
  PrepareFleetContext(&ctx, session_(), 60);
  wire::v1::ReportDataRequest req;
  req.set_task_id(task.task_id());
  *req.mutable_report() = report;
  wire::v1::ReportDataResponse resp;
  return FromGrpcStatus(channel()->stub->ReportData(&ctx, req, &resp));
}

absl::Status GrpcFleetTransport::ReportSitePrivacy(const wire::v1::Task& task,
                                                   const wire::v1::SitePrivacyReport& report) {
  grpc::ClientContext ctx;
  PrepareFleetContext(&ctx, session_(), 60);
  wire::v1::SitePrivacyReport req = report;
  req.set_task_id(task.task_id());
  wire::v1::SitePrivacyResponse resp;
  return FromGrpcStatus(channel()->stub->ReportSitePrivacy(&ctx, req, &resp));
}

SecAggTransport GrpcFleetTransport::SecAgg(const wire::v1::Task& task) {
  SecAggTransport once = [channel = channel(), session = session_, task](
                             const secagg::v1::ClientToServer& m,
                             double timeout) -> absl::StatusOr<secagg::v1::ServerToClient> {
    grpc::ClientContext ctx;
    PrepareFleetContext(&ctx, session(), timeout);
    wire::v1::SecAggRequest req;
    req.set_task_id(task.task_id());
    *req.mutable_message() = m;
    wire::v1::SecAggResponse resp;
    TESSERA_RETURN_IF_ERROR(FromGrpcStatus(channel->stub->SecAggExchange(&ctx, req, &resp)));
    return std::move(*resp.mutable_message());
  };
  return WithTransientRetries(once, stopping_);
}

}  // namespace tessera

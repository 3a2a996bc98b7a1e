// Test helpers that speak the Control and Fleet protocols directly to an in-process
// coordinator (coordinator::CoordinatorServer), for tests that send what real clients never
// would. Header-only; link gRPC, tessera::wire_grpc and tessera::serde.
#ifndef TESSERA_TESTS_INTEGRATION_CONTROL_HELPERS_H_
#define TESSERA_TESTS_INTEGRATION_CONTROL_HELPERS_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "core/model/tensor.h"
#include "core/serde/grpc_status.h"
#include "core/serde/tensor_stream.h"
#include "tessera/wire/v1/control.grpc.pb.h"
#include "tests/integration/process.h"

namespace tessera::testing_support {

// An mTLS channel to 127.0.0.1:port trusting DIR/pki/ca.pem, as identity
// `cert_dir`/`who`.pem/.key; sends up to 64 MiB per message.
inline std::shared_ptr<grpc::Channel> MtlsChannel(const std::string& dir, int port,
                                                  const std::string& cert_dir,
                                                  const std::string& who) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFileOrEmpty(dir + "/pki/ca.pem");
  ssl.pem_cert_chain = ReadFileOrEmpty(dir + "/" + cert_dir + "/" + who + ".pem");
  ssl.pem_private_key = ReadFileOrEmpty(dir + "/" + cert_dir + "/" + who + ".key");
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::SslCredentials(ssl), args);
}

// Creates a run of `config` with `weights` and starts it; returns its id ("" on failure,
// with the error in *error when given).
inline std::string CreateAndStartRun(wire::v1::Control::Stub& control,
                                     const wire::v1::RunConfig& config,
                                     const ArrayRecord& weights, std::string* error = nullptr) {
  grpc::ClientContext ctx;
  wire::v1::RunStatus status;
  auto w = control.CreateRun(&ctx, &status);
  wire::v1::CreateRunRequest m;
  *m.mutable_config() = config;
  bool ok = w->Write(m);
  TensorStreamWriter stream(&weights);
  m.Clear();
  while (ok && stream.Next(m.mutable_weights())) {
    ok = w->Write(m);
    m.Clear();
  }
  w->WritesDone();
  grpc::Status s = w->Finish();
  if (!s.ok()) {
    if (error != nullptr) *error = s.error_message();
    return "";
  }
  grpc::ClientContext sctx;
  wire::v1::RunRef ref;
  ref.set_run_id(status.run_id());
  s = control.StartRun(&sctx, ref, &status);
  if (!s.ok() && error != nullptr) *error = s.error_message();
  return s.ok() ? status.run_id() : "";
}

inline wire::v1::RunStatus GetRunStatus(wire::v1::Control::Stub& control,
                                        const std::string& run) {
  grpc::ClientContext ctx;
  wire::v1::RunRef ref;
  ref.set_run_id(run);
  wire::v1::RunStatus s;
  control.GetRunStatus(&ctx, ref, &s);
  return s;
}

// The run's model after its last completed round, verified against the stream's digest.
inline absl::StatusOr<ArrayRecord> ExportLatestModel(wire::v1::Control::Stub& control,
                                                     const std::string& run) {
  grpc::ClientContext ctx;
  wire::v1::ExportModelRequest req;
  req.set_run_id(run);
  req.set_round(-1);
  auto reader = control.ExportModel(&ctx, req);
  wire::v1::ExportModelResponse m;
  TensorStreamReader stream;
  absl::Status bad;
  while (reader->Read(&m)) {
    if (m.has_weights() && bad.ok()) bad = stream.Add(m.weights());
  }
  absl::Status rpc = FromGrpcStatus(reader->Finish());
  if (!bad.ok()) return bad;
  if (!rpc.ok()) return rpc;
  return std::move(stream).Finish();
}

}  // namespace tessera::testing_support

#endif  // TESSERA_TESTS_INTEGRATION_CONTROL_HELPERS_H_

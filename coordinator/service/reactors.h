// Small reactors shared by the services: finishing a call with an error before any streaming.
#ifndef TESSERA_COORDINATOR_SERVICE_REACTORS_H_
#define TESSERA_COORDINATOR_SERVICE_REACTORS_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "core/serde/grpc_status.h"

namespace tessera::coordinator {

inline grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                             const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A server-streaming call that ends at once with `status`.
template <typename T>
grpc::ServerWriteReactor<T>* FailedWriter(const absl::Status& status) {
  class Failed final : public grpc::ServerWriteReactor<T> {
   public:
    explicit Failed(const absl::Status& s) { this->Finish(ToGrpcStatus(s)); }
    void OnDone() override { delete this; }
  };
  return new Failed(status);
}

// A client-streaming call that ends at once with `status`, reading nothing.
template <typename T>
grpc::ServerReadReactor<T>* FailedReader(const absl::Status& status) {
  class Failed final : public grpc::ServerReadReactor<T> {
   public:
    explicit Failed(const absl::Status& s) { this->Finish(ToGrpcStatus(s)); }
    void OnDone() override { delete this; }
  };
  return new Failed(status);
}

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_REACTORS_H_

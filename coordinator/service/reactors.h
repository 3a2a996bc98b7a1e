// Small reactors shared by the services: finishing a call with an error before any streaming.
#ifndef TESSERA_COORDINATOR_SERVICE_REACTORS_H_
#define TESSERA_COORDINATOR_SERVICE_REACTORS_H_

#include <utility>
#include <vector>

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

// A server-streaming call that writes `messages` in order, then finishes OK.
template <typename T>
class VectorWriter final : public grpc::ServerWriteReactor<T> {
 public:
  explicit VectorWriter(std::vector<T> messages) : messages_(std::move(messages)) { Next(); }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the caller stopped reading"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (next_ == messages_.size()) {
      this->Finish(grpc::Status::OK);
      return;
    }
    this->StartWrite(&messages_[next_++]);
  }
  std::vector<T> messages_;
  size_t next_ = 0;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_REACTORS_H_

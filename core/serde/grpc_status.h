// Conversions between absl::Status and grpc::Status (codes map 1:1).
#ifndef TESSERA_CORE_SERDE_GRPC_STATUS_H_
#define TESSERA_CORE_SERDE_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace tessera {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace tessera

#endif  // TESSERA_CORE_SERDE_GRPC_STATUS_H_

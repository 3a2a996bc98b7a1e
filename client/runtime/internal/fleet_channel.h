// File: fleet_channel.h
// Internal to client/runtime: what a FleetChannel holds, for the calls node_runner.cc makes
// on it besides the FleetTransport ones (Register, Subscribe).
#ifndef TESSERA_CLIENT_RUNTIME_INTERNAL_FLEET_CHANNEL_H_
#define TESSERA_CLIENT_RUNTIME_INTERNAL_FLEET_CHANNEL_H_

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "client/runtime/grpc_transport.h"
#include "core/serde/session_metadata.h"
#include "tessera/wire/v1/fleet.grpc.pb.h"

namespace tessera {

class FleetChannel {
 public:
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<wire::v1::Fleet::Stub> stub;
};

// Session metadata and a deadline `seconds` from now.
inline void PrepareFleetContext(grpc::ClientContext* ctx, const std::string& session,
                                double seconds) {
  ctx->AddMetadata(kSessionMetadataKey, session);
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
}

}  // namespace tessera

#endif  // TESSERA_CLIENT_RUNTIME_INTERNAL_FLEET_CHANNEL_H_

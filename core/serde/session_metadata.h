// File: session_metadata.h
// The gRPC metadata key that carries a client's session id on Fleet calls (after Register).
// One definition for the coordinator, which reads it, and the client, which sends it.
#ifndef TESSERA_CORE_SERDE_SESSION_METADATA_H_
#define TESSERA_CORE_SERDE_SESSION_METADATA_H_

namespace tessera {

inline constexpr char kSessionMetadataKey[] = "x-tessera-session";

}  // namespace tessera

#endif  // TESSERA_CORE_SERDE_SESSION_METADATA_H_

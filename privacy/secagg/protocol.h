// File: protocol.h
// Pieces of the secure aggregation protocol (docs/secagg.md, "Protocol") that the client
// (privacy/secagg/client) and the server (privacy/secagg/server) must compute identically:
// message headers, the signed advertisement payload, the share-encryption key and AAD, and
// the neighbour graph of a roster.
#ifndef TESSERA_PRIVACY_SECAGG_PROTOCOL_H_
#define TESSERA_PRIVACY_SECAGG_PROTOCOL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "tessera/secagg/v1/secagg.pb.h"

namespace tessera::secagg {

// The masked weight is masked like a one-element tensor of this name.
inline constexpr absl::string_view kWeightTensorName = "tessera/secagg/weight";
inline constexpr size_t kSelfSeedBytes = 32;

// Signs `message` with the caller's long-term identity key (e.g. a lambda around
// crypto::SignWithPrivateKeyPem or crypto::Ed25519Signer::Sign).
using SignFn = std::function<absl::StatusOr<std::string>(absl::string_view message)>;
// OK iff `signature` is client `client_index`'s signature of `message` under the identity
// it advertised (`identity`, as relayed in the roster), and that identity is acceptable for
// that client (privacy/secagg/identity.h: a certificate of the federation's CA).
using VerifyFn = std::function<absl::Status(uint32_t client_index, const v1::Identity& identity,
                                            absl::string_view message,
                                            absl::string_view signature)>;

// One quantized tensor: integers mod 2^b.
struct QuantizedTensor {
  std::string name;
  std::vector<uint64_t> values;
};

// What the server expects of each client's masked input.
struct TensorSpec {
  std::string name;
  size_t length = 0;
};

v1::Header MakeHeader(absl::string_view session_id, uint32_t round, v1::Phase phase);

// OK iff `header` is for this session and round and phase `expected`.
// Errors: INVALID_ARGUMENT for another session or round; FAILED_PRECONDITION for another
// phase (a reordered or replayed message).
absl::Status CheckHeader(const v1::Header& header, absl::string_view session_id,
                         uint32_t round, v1::Phase expected);

// The header of whichever message `msg` holds; the default Header if it holds none.
const v1::Header& HeaderOf(const v1::ClientToServer& msg);
const v1::Header& HeaderOf(const v1::ServerToClient& msg);

// The bytes a client signs in AdvertiseKeys: a label, then u32be-length-prefixed
// session_id, u32be round, u32be client_index, u32be-length-prefixed c_pk and s_pk.
std::string AdvertisePayload(absl::string_view session_id, uint32_t round,
                             uint32_t client_index, absl::string_view c_pk,
                             absl::string_view s_pk);

// The roster's graph seed: SHA-256 of a label, the session, the round and every entry's
// index and both public keys, in roster order (ascending index). The coordinator draws the
// session id before it sees any key and cannot change an honest client's keys, so it
// cannot choose the neighbour graph after the fact; every client recomputes it.
std::string GraphSeed(absl::string_view session_id, uint32_t round,
                      const google::protobuf::RepeatedPtrField<v1::RosterEntry>& entries);

// The bytes every survivor signs in the ConsistencyCheck phase: a label, the
// u32be-length-prefixed session id, u32be round, then the survivor and the dropped set,
// each as a u32be count followed by u32be indices (ascending, as the request lists them).
std::string ConsistencyPayload(absl::string_view session_id, uint32_t round,
                               absl::Span<const uint32_t> survivors,
                               absl::Span<const uint32_t> dropped);

// The AES-256-GCM key for shares between two clients: HKDF-SHA256 of their c-key X25519
// secret, info binding session and round. Symmetric in the two clients.
absl::StatusOr<std::string> DeriveShareKey(absl::string_view shared_secret,
                                           absl::string_view session_id, uint32_t round);

// The AAD of the share `sender` encrypts for `receiver`.
std::string ShareAad(absl::string_view session_id, uint32_t round, uint32_t sender,
                     uint32_t receiver);

// Neighbours (by client index, ascending) of each client of a roster: the graph is
// RandomRegularGraph(indices.size(), k, seed) over positions in `indices`' order.
// Errors: INVALID_ARGUMENT if `indices` is not strictly ascending, and those of
// RandomRegularGraph.
absl::StatusOr<std::map<uint32_t, std::vector<uint32_t>>> RosterGraph(
    absl::Span<const uint32_t> indices, uint32_t degree_k, absl::string_view seed32);

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_PROTOCOL_H_

#include "privacy/secagg/protocol.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/base/byte_order.h"
#include "core/base/status_macros.h"
#include "core/crypto/sha256.h"
#include "privacy/crypto/hkdf.h"
#include "privacy/secagg/neighbor_graph.h"

namespace tessera::secagg {
namespace {

void AppendBytes(std::string& out, absl::string_view bytes) {
  AppendBigEndian(out, static_cast<uint32_t>(bytes.size()), 4);
  out.append(bytes.data(), bytes.size());
}

}  // namespace

v1::Header MakeHeader(absl::string_view session_id, uint32_t round, v1::Phase phase) {
  v1::Header h;
  h.set_session_id(std::string(session_id));
  h.set_round(round);
  h.set_phase(phase);
  return h;
}

absl::Status CheckHeader(const v1::Header& header, absl::string_view session_id,
                         uint32_t round, v1::Phase expected) {
  if (header.session_id() != session_id || header.round() != round) {
    return absl::InvalidArgumentError(
        absl::StrCat("message for session '", header.session_id(), "' round ",
                     header.round(), ", expected '", session_id, "' round ", round));
  }
  if (header.phase() != expected) {
    return absl::FailedPreconditionError(
        absl::StrCat("message of phase ", v1::Phase_Name(header.phase()), " during phase ",
                     v1::Phase_Name(expected)));
  }
  return absl::OkStatus();
}

const v1::Header& HeaderOf(const v1::ClientToServer& msg) {
  switch (msg.message_case()) {
    case v1::ClientToServer::kAdvertiseKeys: return msg.advertise_keys().header();
    case v1::ClientToServer::kShareKeys: return msg.share_keys().header();
    case v1::ClientToServer::kMaskedInput: return msg.masked_input().header();
    case v1::ClientToServer::kUnmaskResponse: return msg.unmask_response().header();
    case v1::ClientToServer::kConsistencySignature:
      return msg.consistency_signature().header();
    default: return v1::Header::default_instance();
  }
}

const v1::Header& HeaderOf(const v1::ServerToClient& msg) {
  switch (msg.message_case()) {
    case v1::ServerToClient::kRoster: return msg.roster().header();
    case v1::ServerToClient::kRelayedShares: return msg.relayed_shares().header();
    case v1::ServerToClient::kUnmaskRequest: return msg.unmask_request().header();
    case v1::ServerToClient::kCompleted: return msg.completed().header();
    case v1::ServerToClient::kAborted: return msg.aborted().header();
    case v1::ServerToClient::kConsistencyRequest: return msg.consistency_request().header();
    default: return v1::Header::default_instance();
  }
}

std::string AdvertisePayload(absl::string_view session_id, uint32_t round,
                             uint32_t client_index, absl::string_view c_pk,
                             absl::string_view s_pk) {
  std::string out = "tessera/secagg/advertise-keys/v1";
  AppendBytes(out, session_id);
  AppendBigEndian(out, round, 4);
  AppendBigEndian(out, client_index, 4);
  AppendBytes(out, c_pk);
  AppendBytes(out, s_pk);
  return out;
}

std::string GraphSeed(absl::string_view session_id, uint32_t round,
                      const google::protobuf::RepeatedPtrField<v1::RosterEntry>& entries) {
  std::string in = "tessera/secagg/graph-seed/v1";
  AppendBytes(in, session_id);
  AppendBigEndian(in, round, 4);
  AppendBigEndian(in, static_cast<uint32_t>(entries.size()), 4);
  for (const v1::RosterEntry& e : entries) {
    AppendBigEndian(in, e.client_index(), 4);
    AppendBytes(in, e.c_pk());
    AppendBytes(in, e.s_pk());
  }
  return crypto::Sha256Digest(in);
}

std::string ConsistencyPayload(absl::string_view session_id, uint32_t round,
                               absl::Span<const uint32_t> survivors,
                               absl::Span<const uint32_t> dropped) {
  std::string out = "tessera/secagg/consistency-check/v1";
  AppendBytes(out, session_id);
  AppendBigEndian(out, round, 4);
  for (absl::Span<const uint32_t> set : {survivors, dropped}) {
    AppendBigEndian(out, static_cast<uint32_t>(set.size()), 4);
    for (uint32_t i : set) AppendBigEndian(out, i, 4);
  }
  return out;
}

absl::StatusOr<std::string> DeriveShareKey(absl::string_view shared_secret,
                                           absl::string_view session_id, uint32_t round) {
  std::string info = "tessera/secagg/share-key/v1";
  AppendBytes(info, session_id);
  AppendBigEndian(info, round, 4);
  return crypto::HkdfSha256(shared_secret, "", info, 32);
}

std::string ShareAad(absl::string_view session_id, uint32_t round, uint32_t sender,
                     uint32_t receiver) {
  std::string aad = "tessera/secagg/share-aad/v1";
  AppendBytes(aad, session_id);
  AppendBigEndian(aad, round, 4);
  AppendBigEndian(aad, sender, 4);
  AppendBigEndian(aad, receiver, 4);
  return aad;
}

absl::StatusOr<std::map<uint32_t, std::vector<uint32_t>>> RosterGraph(
    absl::Span<const uint32_t> indices, uint32_t degree_k, absl::string_view seed32) {
  for (size_t i = 1; i < indices.size(); ++i) {
    if (indices[i] <= indices[i - 1]) {
      return absl::InvalidArgumentError("roster indices are not strictly ascending");
    }
  }
  TESSERA_ASSIGN_OR_RETURN(
      auto graph,
      RandomRegularGraph(static_cast<uint32_t>(indices.size()), degree_k, seed32));
  std::map<uint32_t, std::vector<uint32_t>> out;
  for (size_t p = 0; p < graph.size(); ++p) {
    std::vector<uint32_t>& peers = out[indices[p]];
    for (uint32_t q : graph[p]) peers.push_back(indices[q]);
    std::sort(peers.begin(), peers.end());
  }
  return out;
}

}  // namespace tessera::secagg

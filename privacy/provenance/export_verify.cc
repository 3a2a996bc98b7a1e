// File: export_verify.cc
// The members read here are documented in docs/governance_formats.md.
#include "privacy/provenance/export_verify.h"

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/base/status_macros.h"
#include "core/crypto/sha256.h"
#include "core/governance/canonical_json.h"
#include "core/model/safetensors.h"
#include "core/serde/tensor_stream.h"

namespace tessera::provenance {
namespace {

using nlohmann::json;

// The member at a dotted `path` ("model.weights.sha256"), or nullptr.
const json* Find(const json& root, absl::string_view path) {
  const json* at = &root;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(std::string(part));
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

absl::Status Lacks(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("bill of materials: member \"", path, "\" is missing or not ", what));
}

absl::StatusOr<std::string> String(const json& root, absl::string_view path) {
  const json* v = Find(root, path);
  if (v == nullptr || !v->is_string()) return Lacks(path, "a string");
  return v->get<std::string>();
}

absl::StatusOr<uint64_t> Unsigned(const json& root, absl::string_view path) {
  const json* v = Find(root, path);
  if (v == nullptr || !v->is_number_unsigned()) return Lacks(path, "a non-negative integer");
  return v->get<uint64_t>();
}

// What the bill of materials says, read once with every member the checks need.
struct Claims {
  std::string run_id;
  uint64_t round = 0;
  std::string weights_sha256;
  std::string tensor_digest;
  std::string model_card_sha256;
  std::string initial_tensor_digest;  // "" when null
  std::string rule;                   // training.aggregation.rule, "" when absent
  const json* rounds = nullptr;
  const json* participants = nullptr;  // may be null
  Signature signature;
};

absl::StatusOr<Claims> ReadClaims(const json& bom) {
  Claims c;
  TESSERA_ASSIGN_OR_RETURN(c.run_id, String(bom, "run.id"));
  TESSERA_ASSIGN_OR_RETURN(c.round, Unsigned(bom, "model.round"));
  TESSERA_ASSIGN_OR_RETURN(c.weights_sha256, String(bom, "model.weights.sha256"));
  TESSERA_ASSIGN_OR_RETURN(c.tensor_digest, String(bom, "model.weights.tensor_digest"));
  TESSERA_ASSIGN_OR_RETURN(c.model_card_sha256, String(bom, "model_card.sha256"));
  TESSERA_ASSIGN_OR_RETURN(c.signature.algorithm, String(bom, "signature.algorithm"));
  TESSERA_ASSIGN_OR_RETURN(c.signature.signer, String(bom, "signature.signer"));
  TESSERA_ASSIGN_OR_RETURN(c.signature.value, String(bom, "signature.value"));
  const json* initial = Find(bom, "base_model.initial_tensor_digest");
  if (initial == nullptr || !(initial->is_null() || initial->is_string())) {
    return Lacks("base_model.initial_tensor_digest", "a string or null");
  }
  if (initial->is_string()) c.initial_tensor_digest = initial->get<std::string>();
  if (const json* rule = Find(bom, "training.aggregation.rule");
      rule != nullptr && rule->is_string()) {
    c.rule = rule->get<std::string>();
  }
  c.rounds = Find(bom, "rounds");
  if (c.rounds == nullptr || !c.rounds->is_array()) return Lacks("rounds", "an array");
  for (const json& r : *c.rounds) {
    if (!r.is_object() || !r.contains("round") || !r["round"].is_number_unsigned() ||
        !r.contains("model_sha256") || !r["model_sha256"].is_string()) {
      return Lacks("rounds[]", "objects with \"round\" and \"model_sha256\"");
    }
  }
  c.participants = Find(bom, "participants");
  if (c.participants != nullptr && !c.participants->is_array()) c.participants = nullptr;
  return c;
}

ExportCheck Compare(std::string name, absl::string_view what, const std::string& expected,
                    const std::string& found) {
  ExportCheck check{std::move(name), expected == found, ""};
  check.detail = check.ok ? absl::StrCat(what, " ", found, " matches")
                          : absl::StrCat(what, " mismatch: the bill of materials says ", expected,
                                         ", the file has ", found);
  return check;
}

ExportCheck SignatureCheck(const json& bom, const Claims& claims, absl::string_view ca_pem,
                           SignerIdentity* signer) {
  ExportCheck check{"signature", false, ""};
  json unsigned_bom = bom;
  unsigned_bom.erase("signature");
  absl::StatusOr<std::string> canonical = governance::CanonicalJson(unsigned_bom);
  if (!canonical.ok()) {
    check.detail = std::string(canonical.status().message());
    return check;
  }
  absl::StatusOr<SignerIdentity> who = VerifySignature(*canonical, claims.signature, ca_pem);
  if (!who.ok()) {
    check.detail = absl::StrCat("does not verify: ", who.status().message());
    return check;
  }
  check.ok = true;
  *signer = *who;
  if (who->certified) {
    check.detail =
        absl::StrCat(claims.signature.algorithm, " signature by \"", who->common_name, "\" (O \"",
                     who->organization, "\"), certificate chains to the given CA, fingerprint ",
                     who->fingerprint_sha256_hex);
  } else if (who->common_name.empty()) {
    check.detail = absl::StrCat(
        claims.signature.algorithm,
        " signature by a bare key (an --insecure coordinator) that nobody vouches for, "
        "fingerprint ",
        who->fingerprint_sha256_hex);
  } else {
    check.detail =
        absl::StrCat(claims.signature.algorithm, " signature by \"", who->common_name, "\" (O \"",
                     who->organization, "\"); no CA given, so the certificate itself is unchecked");
  }
  return check;
}

// The exported round is a committed round of the run with the exported tensors' digest
// (round 0: the initial model), and the committed rounds are 1..N without gaps.
ExportCheck RoundChainCheck(const Claims& c) {
  ExportCheck check{"round chain", true, ""};
  std::vector<std::string> problems;
  std::map<uint64_t, std::string> digest_of;
  uint64_t want = 1;
  for (const json& r : *c.rounds) {
    const uint64_t round = r["round"].get<uint64_t>();
    if (round != want) {
      problems.push_back(
          absl::StrCat("rounds[", want - 1, "] is round ", round, ", expected round ", want));
    }
    digest_of[round] = r["model_sha256"].get<std::string>();
    want = round + 1;
  }
  std::string claimed;
  if (c.round == 0) {
    claimed = c.initial_tensor_digest;
    if (claimed.empty()) problems.push_back("round 0 exported, but no initial_tensor_digest");
  } else if (auto it = digest_of.find(c.round); it != digest_of.end()) {
    claimed = it->second;
  } else {
    problems.push_back(absl::StrCat("model.round ", c.round, " is not a committed round (",
                                    digest_of.size(), " committed)"));
  }
  // SCAFFOLD's round digest also covers the server control variate, which exports leave out.
  const bool scaffold = c.rule == "scaffold";
  if (!claimed.empty() && claimed != c.tensor_digest && !scaffold) {
    problems.push_back(absl::StrCat("round ", c.round, "'s model_sha256 is ", claimed,
                                    ", model.weights.tensor_digest is ", c.tensor_digest));
  }
  if (c.participants != nullptr) {
    std::map<std::string, bool> known;
    for (const json& p : *c.participants) {
      if (p.is_object() && p.contains("client") && p["client"].is_string()) {
        known[p["client"].get<std::string>()] = true;
      }
    }
    for (const json& r : *c.rounds) {
      if (!r.contains("participants") || !r["participants"].is_array()) continue;
      for (const json& client : r["participants"]) {
        if (client.is_string() && !known.count(client.get<std::string>())) {
          problems.push_back(absl::StrCat("round ", r["round"].get<uint64_t>(),
                                          " names participant \"", client.get<std::string>(),
                                          "\", who is not in participants[]"));
        }
      }
    }
  }
  if (!problems.empty()) {
    check.ok = false;
    check.detail = absl::StrJoin(problems, "; ");
  } else if (scaffold && claimed != c.tensor_digest) {
    check.detail = absl::StrCat(
        "round ", c.round, " of ", digest_of.size(),
        " committed rounds; SCAFFOLD: the round's digest covers the server control variate "
        "too, so only the signed bill of materials links it to the exported tensors");
  } else {
    check.detail = absl::StrCat("round ", c.round, " of rounds 1..", digest_of.size(),
                                " has the exported tensor digest");
  }
  return check;
}

}  // namespace

bool ExportVerification::ok() const {
  if (checks.empty()) return false;
  for (const ExportCheck& c : checks) {
    if (!c.ok) return false;
  }
  return true;
}

absl::StatusOr<std::string> SignBillOfMaterials(absl::string_view bom_json,
                                                const ProvenanceSigner& signer) {
  TESSERA_ASSIGN_OR_RETURN(json bom, governance::ParseJson(bom_json));
  if (!bom.is_object()) {
    return absl::InvalidArgumentError("bill of materials is not a JSON object");
  }
  if (bom.contains("signature")) {
    return absl::InvalidArgumentError("bill of materials already has a \"signature\"");
  }
  TESSERA_ASSIGN_OR_RETURN(std::string canonical, governance::CanonicalJson(bom));
  TESSERA_ASSIGN_OR_RETURN(Signature sig, signer.Sign(canonical));
  bom["signature"] = {{"algorithm", sig.algorithm}, {"signer", sig.signer}, {"value", sig.value}};
  // CanonicalJson accepted every string, so dump cannot throw.
  return bom.dump(2) + "\n";
}

absl::StatusOr<ExportVerification> VerifyExport(const ExportFiles& files,
                                                absl::string_view ca_pem) {
  absl::StatusOr<json> parsed = governance::ParseJson(files.bill_of_materials);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bill of materials is not JSON: ", parsed.status().message()));
  }
  const json& bom = *parsed;
  if (!bom.is_object()) {
    return absl::InvalidArgumentError("bill of materials is not a JSON object");
  }
  TESSERA_ASSIGN_OR_RETURN(const Claims claims, ReadClaims(bom));
  ExportVerification out;
  out.run_id = claims.run_id;
  out.round = static_cast<uint32_t>(claims.round);
  out.model_sha256_hex = claims.tensor_digest;

  out.checks.push_back(SignatureCheck(bom, claims, ca_pem, &out.signer));

  out.checks.push_back(Compare("weights sha256", "SHA-256", claims.weights_sha256,
                               crypto::HexEncode(crypto::Sha256Digest(files.weights))));

  std::map<std::string, std::string> metadata;
  absl::StatusOr<ArrayRecord> record = ParseSafetensors(files.weights, &metadata);
  if (record.ok()) {
    out.checks.push_back(Compare("weights tensors", "tensor digest", claims.tensor_digest,
                                 crypto::HexEncode(DigestArrayRecord(*record))));
  } else {
    out.checks.push_back({"weights tensors", false,
                          absl::StrCat("not a safetensors file: ", record.status().message())});
  }

  out.checks.push_back(RoundChainCheck(claims));

  out.checks.push_back(Compare("model card", "SHA-256", claims.model_card_sha256,
                               crypto::HexEncode(crypto::Sha256Digest(files.model_card))));

  ExportCheck meta{"safetensors metadata", true, ""};
  if (!record.ok()) {
    meta = {"safetensors metadata", false, "not checked: the weights file does not parse"};
  } else {
    std::vector<std::string> problems;
    const std::pair<const char*, std::string> expected[] = {
        {"tessera.run_id", claims.run_id}, {"tessera.round", absl::StrCat(claims.round)}};
    for (const auto& [key, want] : expected) {
      auto it = metadata.find(key);
      if (it == metadata.end()) {
        problems.push_back(absl::StrCat("no \"", key, "\" (expected \"", want, "\")"));
      } else if (it->second != want) {
        problems.push_back(absl::StrCat("\"", key, "\" is \"", it->second,
                                        "\", the bill of materials says \"", want, "\""));
      }
    }
    meta.ok = problems.empty();
    meta.detail = meta.ok ? absl::StrCat("run ", claims.run_id, " round ", claims.round)
                          : absl::StrJoin(problems, "; ");
  }
  out.checks.push_back(std::move(meta));
  return out;
}

}  // namespace tessera::provenance

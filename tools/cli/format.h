// File: format.h
// How the operator CLI prints runs, rounds and clients: tables for people, JSON (the
// proto3 JSON mapping of the wire messages) for scripts.
#ifndef TESSERA_TOOLS_CLI_FORMAT_H_
#define TESSERA_TOOLS_CLI_FORMAT_H_

#include <string>

#include <google/protobuf/message.h>

#include "tessera/wire/v1/control.pb.h"

namespace tessera::cli {

std::string ToJson(const google::protobuf::Message& message);
// "1.2 MB", "512 B".
std::string HumanBytes(uint64_t bytes);
// `language_model` (a [model.causal_lm] run): test_acc is next-token accuracy, and a last
// column gives the held-out perplexity, exp(test_loss) of the token-weighted mean loss.
std::string RoundTableHeader(bool language_model = false);
std::string RoundTableRow(const wire::v1::RoundSummary& round, bool language_model = false);
// The run, its secure aggregation and privacy settings when on, the clients it refused
// ("refused: NAME: REASON") and those whose record-level budget is spent, and one table row
// per round, each followed by its secure aggregation lines (tools/cli/secagg_status.h) and
// its sites' record-level privacy reports (tools/cli/privacy_status.h).
std::string RunStatusText(const wire::v1::RunStatus& status);
std::string RunListText(const wire::v1::ListRunsResponse& runs);
// One row per client: organization (certificate O), connection, device, rounds, the data
// card's dataset name and license ("-" without a card), last seen.
std::string ClientListText(const wire::v1::ListClientsResponse& clients);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_FORMAT_H_

// File: run_commands.cc
// `tessera run create|start|status|watch|cancel|list`, `tessera clients list` and
// `tessera privacy spent`: the Control API calls about runs.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/file.h"
#include "core/base/version.h"
#include "core/config/run_config.h"
#include "core/crypto/sha256.h"
#include "core/model/safetensors.h"
#include "core/serde/grpc_status.h"
#include "core/serde/tensor_stream.h"
#include "tools/cli/commands.h"
#include "tools/cli/errors.h"
#include "tools/cli/format.h"
#include "tools/cli/privacy_status.h"
#include "tools/cli/secagg_status.h"

namespace tessera::cli {
namespace {

// Connects and makes the unary Control call `rpc` with `request`: 0 with `*response` filled,
// else Fail's exit code after it printed the error ("connect", or `what` for the call).
template <typename Request, typename Response>
int CallControl(const ConnectionOptions& c,
                grpc::Status (wire::v1::Control::Stub::*rpc)(grpc::ClientContext*, const Request&,
                                                             Response*),
                const Request& request, Response* response, absl::string_view what) {
  auto stub = Connect(c);
  if (!stub.ok()) return Fail("connect", stub.status());
  auto ctx = UnaryContext(c);
  grpc::Status s = ((**stub).*rpc)(ctx.get(), request, response);
  if (!s.ok()) return Fail(what, s);
  return 0;
}

wire::v1::RunRef RunRefOf(const std::string& run_id) {
  wire::v1::RunRef ref;
  ref.set_run_id(run_id);
  return ref;
}

// The initial weights of a run config (and its TorchScript program, if any).
absl::Status PrepareWeights(RunConfigFile& file, ArrayRecord* weights, std::string* program) {
  std::string tmp;
  auto& model = *file.config.mutable_model();
  if (!file.torchscript_path.empty()) {
    absl::StatusOr<std::string> bytes = ReadFileToString(file.torchscript_path);
    if (!bytes.ok()) return absl::Status(bytes.status().code(),
                                         absl::StrCat("model.torchscript: ", bytes.status().message()));
    *program = std::move(*bytes);
    model.set_torchscript_sha256(crypto::Sha256Digest(*program));
    if (file.initial_safetensors_path.empty()) {
      tmp = TempPath(".safetensors");
      if (RunModelTool({"import", "--torchscript", file.torchscript_path, "--out", tmp}) != 0) {
        return absl::InvalidArgumentError("model.torchscript: tessera-model import failed");
      }
    }
  } else if (file.initial_safetensors_path.empty()) {
    tmp = TempPath(".safetensors");
    if (RunModelTool({"init", "--architecture", model.architecture(), "--seed",
                      absl::StrCat(model.seed()), "--out", tmp}) != 0) {
      return absl::InvalidArgumentError("model.architecture: tessera-model init failed");
    }
  }
  absl::StatusOr<ArrayRecord> read;
  if (tmp.empty()) {
    // The operator's own file: its digest goes into the run's provenance.
    absl::StatusOr<std::string> bytes = ReadFileToString(file.initial_safetensors_path);
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(),
                          absl::StrCat("model.initial_weights: ", bytes.status().message()));
    }
    model.set_initial_weights_file_sha256(crypto::Sha256Digest(*bytes));
    read = ParseSafetensors(*bytes);
    if (!read.ok()) {
      read = absl::Status(read.status().code(), absl::StrCat(file.initial_safetensors_path, ": ",
                                                             read.status().message()));
    }
  } else {
    read = ReadSafetensorsFile(tmp);
    std::filesystem::remove(tmp);
  }
  if (!read.ok()) {
    return absl::Status(read.status().code(),
                        absl::StrCat("model.initial_weights: ", read.status().message()));
  }
  *weights = std::move(*read);
  return absl::OkStatus();
}

}  // namespace

int CreateRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& config,
              bool start) {
  absl::StatusOr<RunConfigFile> file = LoadRunConfigFile(config);
  if (!file.ok()) return Fail("run create", file.status());  // the message names the file
  ArrayRecord weights;
  std::string program;
  if (absl::Status s = PrepareWeights(*file, &weights, &program); !s.ok()) return Fail(config, s);
  auto stub = Connect(c);
  if (!stub.ok()) return Fail("connect", stub.status());

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
  wire::v1::RunStatus status;
  auto writer = (*stub)->CreateRun(&ctx, &status);
  wire::v1::CreateRunRequest msg;
  *msg.mutable_config() = file->config;
  msg.set_cli_version(kVersion);
  bool ok = writer->Write(msg);
  TensorStreamWriter stream(&weights);
  while (ok) {
    msg.Clear();
    if (!stream.Next(msg.mutable_weights())) break;
    ok = writer->Write(msg);
  }
  for (size_t off = 0; ok && off < program.size(); off += kMaxChunkBytes) {
    msg.Clear();
    msg.set_artifact(program.substr(off, kMaxChunkBytes));
    ok = writer->Write(msg);
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) return Fail("run create", s);
  if (start) {
    wire::v1::RunRef ref;
    ref.set_run_id(status.run_id());
    auto sctx = UnaryContext(c);
    grpc::Status started = (*stub)->StartRun(sctx.get(), ref, &status);
    if (!started.ok()) return Fail("run start", started);
  }
  if (out.json) {
    std::cout << ToJson(status) << "\n";
  } else {
    std::cout << "created run " << status.run_id() << " (" << status.name() << ", "
              << weights.tensors.size() << " tensors, " << HumanBytes(weights.TotalBytes())
              << ")" << (start ? ", started" : "") << "\n"
              << SecAggConfigText(file->config.secure_aggregation())
              << PrivacyConfigText(file->config.differential_privacy());
  }
  return 0;
}

namespace {

// Erases the live block printed last (`live`, cursor at the end of its last line).
std::string EraseLive(const std::string& live) {
  const auto up = std::count(live.begin(), live.end(), '\n');
  return up > 0 ? absl::StrCat("\r\033[", up, "A\033[J") : "\r\033[K";
}

using RunRpc = grpc::Status (wire::v1::Control::Stub::*)(grpc::ClientContext*,
                                                          const wire::v1::RunRef&,
                                                          wire::v1::RunStatus*);

int UnaryRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id,
             RunRpc rpc, absl::string_view what) {
  wire::v1::RunStatus status;
  if (int failed = CallControl(c, rpc, RunRefOf(run_id), &status, what); failed != 0) {
    return failed;
  }
  std::cout << (out.json ? ToJson(status) + "\n" : RunStatusText(status));
  return 0;
}

}  // namespace

int StartRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id) {
  return UnaryRun(c, out, run_id, &wire::v1::Control::Stub::StartRun, "run start");
}

int CancelRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id) {
  return UnaryRun(c, out, run_id, &wire::v1::Control::Stub::CancelRun, "run cancel");
}

int ArchiveRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id) {
  return UnaryRun(c, out, run_id, &wire::v1::Control::Stub::ArchiveRun, "run archive");
}

int DeleteRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id,
              bool yes) {
  if (!yes) {
    std::cerr << "tessera: run delete: deleting run " << run_id
              << " cannot be undone; add --yes to confirm\n";
    return 2;
  }
  wire::v1::DeleteRunResponse response;
  if (int failed = CallControl(c, &wire::v1::Control::Stub::DeleteRun, RunRefOf(run_id),
                               &response, "run delete");
      failed != 0) {
    return failed;
  }
  if (out.json) {
    std::cout << ToJson(response) << "\n";
  } else {
    std::cout << "run " << response.run_id() << " deleted (" << response.deleted_models()
              << " round models removed; its audit entries, provenance and privacy charges "
                 "are kept)\n";
  }
  return 0;
}

int RunStatus(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id) {
  return UnaryRun(c, out, run_id, &wire::v1::Control::Stub::GetRunStatus, "run status");
}

int PrivacySpent(const ConnectionOptions& c, const OutputOptions& out,
                 const std::string& run_id) {
  wire::v1::RunStatus status;
  if (int failed = CallControl(c, &wire::v1::Control::Stub::GetRunStatus, RunRefOf(run_id),
                               &status, "privacy spent");
      failed != 0) {
    return failed;
  }
  if (!status.has_privacy()) {
    std::cerr << "tessera: privacy spent: run " << run_id
              << " does not use differential privacy\n";
    return 1;
  }
  if (out.json) {
    std::cout << PrivacyJson(status) << "\n";
  } else {
    std::cout << "run " << status.run_id() << " (" << status.name() << ")\n"
              << PrivacyConfigText(status.config().differential_privacy())
              << PrivacyBudgetText(status) << PrivacyRoundsTable(status);
  }
  return 0;
}

int WatchRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id) {
  auto stub = Connect(c);
  if (!stub.ok()) return Fail("connect", stub.status());
  grpc::ClientContext ctx;
  wire::v1::RunRef ref;
  ref.set_run_id(run_id);
  auto reader = (*stub)->WatchRun(&ctx, ref);
  wire::v1::RunStatus status;
  const bool tty = isatty(STDOUT_FILENO);
  size_t printed = 0;  // finished round rows already printed
  bool header = false;
  std::string live;
  wire::v1::RunState last_state = wire::v1::RUN_STATE_UNSPECIFIED;
  while (reader->Read(&status)) {
    if (out.json) {
      std::cout << ToJson(status) << std::endl;
      last_state = status.state();
      continue;
    }
    if (!header) {
      std::cout << "run " << status.run_id() << " (" << status.name() << "), "
                << status.total_rounds() << " rounds\n"
                << SecAggConfigText(status.config().secure_aggregation())
                << PrivacyConfigText(status.config().differential_privacy())
                << RoundTableHeader(status.config().model().has_causal_lm()) << "\n";
      header = true;
    }
    std::vector<const wire::v1::RoundSummary*> finished;
    const wire::v1::RoundSummary* current = nullptr;
    for (const auto& r : status.rounds()) {
      if (r.state() == wire::v1::ROUND_COMPLETED || r.state() == wire::v1::ROUND_FAILED) {
        finished.push_back(&r);
      } else {
        current = &r;
      }
    }
    if (tty && !live.empty()) std::cout << EraseLive(live);
    for (; printed < finished.size(); ++printed) {
      std::cout << RoundTableRow(*finished[printed], status.config().model().has_causal_lm())
                << "\n" << SecAggRoundText(*finished[printed])
                << SitePrivacyText(*finished[printed]);
    }
    live.clear();
    if (current != nullptr) {
      // The row and its secure aggregation lines, without the last newline so the next
      // update can rewrite them in place.
      live = absl::StrCat(RoundTableRow(*current, status.config().model().has_causal_lm()), "\n",
                          SecAggRoundText(*current));
      live.pop_back();
      if (tty) std::cout << live;
    }
    std::cout.flush();
    last_state = status.state();
  }
  grpc::Status s = reader->Finish();
  if (tty && !live.empty()) std::cout << "\n";
  if (!s.ok()) return Fail("run watch", s);
  if (!out.json) {
    std::cout << "run " << run_id << " " << wire::v1::RunState_Name(last_state);
    if (!status.message().empty()) std::cout << ": " << status.message();
    std::cout << "\n" << PrivacyBudgetText(status) << BudgetExhaustedText(status);
  }
  return last_state == wire::v1::COMPLETED ? 0 : 1;
}

int ListRuns(const ConnectionOptions& c, const OutputOptions& out, bool include_archived) {
  wire::v1::ListRunsRequest request;
  request.set_include_archived(include_archived);
  wire::v1::ListRunsResponse runs;
  if (int failed = CallControl(c, &wire::v1::Control::Stub::ListRuns, request, &runs, "run list");
      failed != 0) {
    return failed;
  }
  std::cout << (out.json ? ToJson(runs) + "\n" : RunListText(runs));
  return 0;
}

int ListClients(const ConnectionOptions& c, const OutputOptions& out) {
  wire::v1::ListClientsResponse clients;
  if (int failed = CallControl(c, &wire::v1::Control::Stub::ListClients,
                               wire::v1::ListClientsRequest(), &clients, "clients list");
      failed != 0) {
    return failed;
  }
  std::cout << (out.json ? ToJson(clients) + "\n" : ClientListText(clients));
  return 0;
}

}  // namespace tessera::cli

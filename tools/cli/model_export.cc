// File: model_export.cc
// `tessera model export`: the ExportModel stream, then the weights, the model card and the
// bill of materials on disk (model_export.h), then the TorchScript program if the run has one.
#include "tools/cli/model_export.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <system_error>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "core/crypto/sha256.h"
#include "core/model/image_input.h"
#include "core/model/safetensors.h"
#include "core/serde/tensor_stream.h"
#include "privacy/crypto/certificate.h"
#include "tools/cli/commands.h"
#include "tools/cli/errors.h"
#include "tools/cli/format.h"

namespace tessera::cli {
namespace {

// A README.md written by an earlier export: the model card's front matter names the library
// (`library_name: "tessera"`, quoted or not).
bool IsTesseraModelCard(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, "library_name:")) continue;
    line = absl::StripAsciiWhitespace(line);
    if (line.size() >= 2 && (line.front() == '"' || line.front() == '\'') &&
        line.back() == line.front()) {
      line = line.substr(1, line.size() - 2);
    }
    return line == "tessera";
  }
  return false;
}

}  // namespace

absl::StatusOr<std::string> JsonStringMember(absl::string_view json, absl::string_view path) {
  const nlohmann::json doc = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("not JSON");
  const nlohmann::json* at = &doc;
  for (absl::string_view key : absl::StrSplit(path, '.')) {
    auto it = at->is_object() ? at->find(std::string(key)) : at->end();
    if (!at->is_object() || it == at->end()) {
      return absl::InvalidArgumentError(absl::StrCat("no member ", path));
    }
    at = &*it;
  }
  if (!at->is_string()) return absl::InvalidArgumentError(absl::StrCat(path, " is not a string"));
  return at->get<std::string>();
}

std::string BillOfMaterialsSigner(absl::string_view bom_json) {
  absl::StatusOr<std::string> pem = JsonStringMember(bom_json, "signature.signer");
  if (!pem.ok()) return "nobody (no signature.signer)";
  absl::StatusOr<crypto::CertificateIdentity> id = crypto::ParseCertificateIdentity(*pem);
  if (!id.ok()) return "a bare public key (an --insecure coordinator)";
  std::string who = absl::StrCat("CN=", id->common_name);
  if (!id->organization.empty()) absl::StrAppend(&who, " O=", id->organization);
  return who;
}

std::string PreprocessingText(const wire::v1::ModelSpec& model) {
  if (model.has_causal_lm()) return "";
  const std::string input =
      model.architecture().empty()
          ? "input as the TorchScript program defines"
          : absl::StrCat("input float32 [batch, ", absl::StrJoin(kBuiltinImageShape, ", "),
                         "] (channels first, one grayscale channel), ", kBuiltinNumClasses,
                         " logits");
  return absl::StrCat(input, "; IDX pixels x (0-255) normalized as ",
                      ImageNormalizationFormula(),
                      " (Fashion-MNIST training mean and std), CSV features as given; "
                      "Fashion-MNIST labels ",
                      FashionMnistLabelsText());
}

absl::Status CheckTorchScriptRequested(const wire::v1::ExportHeader& header,
                                       absl::string_view torchscript_path) {
  if (torchscript_path.empty()) return absl::OkStatus();
  const wire::v1::ModelSpec& model = header.config().model();
  std::string what;
  if (model.has_causal_lm()) {
    what = "a LoRA adapter of a causal language model, not a TorchScript program";
  } else if (!model.architecture().empty()) {
    what = absl::StrCat("the built-in architecture \"", model.architecture(),
                        "\", not a TorchScript program");
  } else if (header.artifact_bytes() == 0) {
    what = "one the coordinator sent no TorchScript program for";
  } else {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "--torchscript ", torchscript_path, ": run ", header.run_id(), "'s model is ", what,
      ", so there is no TorchScript file to write; export without --torchscript (the "
      "safetensors weights are the model); nothing written"));
}

absl::StatusOr<ExportedFiles> WriteExport(
    const wire::v1::ExportHeader& header, const ArrayRecord& weights,
    const std::string& weights_path,
    const std::map<std::string, std::string>& fallback_metadata, bool force) {
  const std::map<std::string, std::string> metadata =
      header.safetensors_metadata().empty()
          ? fallback_metadata
          : std::map<std::string, std::string>(header.safetensors_metadata().begin(),
                                               header.safetensors_metadata().end());
  TESSERA_ASSIGN_OR_RETURN(std::string bytes, SerializeSafetensors(weights, metadata));
  ExportedFiles files;
  files.weights_path = weights_path;
  files.weights_sha256_hex = crypto::HexEncode(crypto::Sha256Digest(bytes));
  const std::filesystem::path dir = std::filesystem::path(weights_path).parent_path();
  auto next_to_weights = [&dir](absl::string_view name) {
    return (dir / std::string(name)).string();
  };
  // Everything is checked before anything is written.
  if (!header.bill_of_materials().empty()) {
    absl::StatusOr<std::string> expected =
        JsonStringMember(header.bill_of_materials(), "model.weights.sha256");
    if (!expected.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the coordinator's bill of materials: ", expected.status().message()));
    }
    if (absl::AsciiStrToLower(*expected) != files.weights_sha256_hex) {
      return absl::DataLossError(absl::StrCat(
          "the weights serialized here (sha256 ", files.weights_sha256_hex,
          ") are not the file the bill of materials names (sha256 ", *expected,
          "); nothing written (do the CLI and coordinator versions match?)"));
    }
    files.bom_path = next_to_weights(kBillOfMaterialsFileName);
    files.signer = BillOfMaterialsSigner(header.bill_of_materials());
  }
  if (!header.model_card().empty()) {
    files.model_card_path = next_to_weights(kModelCardFileName);
    std::error_code ec;
    if (!force && std::filesystem::exists(files.model_card_path, ec)) {
      absl::StatusOr<std::string> old = ReadFileToString(files.model_card_path);
      if (!old.ok() || !IsTesseraModelCard(*old)) {
        return absl::AlreadyExistsError(absl::StrCat(
            files.model_card_path,
            " exists and is not a Tessera model card; pass --force to replace it"));
      }
    }
  }
  if (std::error_code ec; !dir.empty() && !std::filesystem::is_directory(dir, ec) &&
                          !std::filesystem::create_directories(dir, ec)) {
    return absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  }
  TESSERA_RETURN_IF_ERROR(WriteFileAtomically(weights_path, bytes, 0644, /*replace=*/true));
  if (!files.model_card_path.empty()) {
    TESSERA_RETURN_IF_ERROR(
        WriteFileAtomically(files.model_card_path, header.model_card(), 0644, true));
  }
  if (!files.bom_path.empty()) {
    TESSERA_RETURN_IF_ERROR(
        WriteFileAtomically(files.bom_path, header.bill_of_materials(), 0644, true));
  }
  return files;
}

int ExportModel(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id,
                int round, const std::string& out_path, std::string torchscript_path,
                bool force) {
  auto stub = Connect(c);
  if (!stub.ok()) return Fail("connect", stub.status());
  grpc::ClientContext ctx;
  wire::v1::ExportModelRequest req;
  req.set_run_id(run_id);
  req.set_round(round);
  req.set_weights_file_name(std::filesystem::path(out_path).filename().string());
  auto reader = (*stub)->ExportModel(&ctx, req);
  wire::v1::ExportModelResponse msg;
  wire::v1::ExportHeader header;
  TensorStreamReader weights;
  std::string program;
  absl::Status bad;
  while (reader->Read(&msg)) {
    if (!bad.ok()) continue;
    if (msg.has_header()) {
      header = msg.header();
      bad = CheckTorchScriptRequested(header, torchscript_path);
    } else if (msg.has_weights()) {
      bad = weights.Add(msg.weights());
    } else {
      program += msg.artifact();
    }
    if (!bad.ok()) ctx.TryCancel();
  }
  grpc::Status s = reader->Finish();
  if (!bad.ok()) return Fail("model export", bad);
  if (!s.ok()) return Fail("model export", s);
  if (weights.done() && weights.digest() != header.model_sha256()) {
    return Fail("model export", absl::DataLossError("weights do not match the run's SHA-256"));
  }
  absl::StatusOr<ArrayRecord> record = std::move(weights).Finish();
  if (!record.ok()) return Fail("model export", record.status());
  // What a coordinator without safetensors_metadata (before docs/governance.md) gets.
  const std::map<std::string, std::string> fallback = {
      {"format", "pt"},
      {"tessera.run_id", run_id},
      {"tessera.run_name", header.config().name()},
      {"tessera.round", absl::StrCat(header.round())},
      {"tessera.model_sha256", crypto::HexEncode(header.model_sha256())},
      {"tessera.architecture", header.config().model().architecture()},
  };
  absl::StatusOr<ExportedFiles> files = WriteExport(header, *record, out_path, fallback, force);
  if (!files.ok()) return Fail("model export", files.status());
  std::string message = absl::StrCat("exported round ", header.round(), " of run ", run_id,
                                     " to ", out_path);
  if (!program.empty()) {
    if (torchscript_path.empty()) {
      torchscript_path = std::filesystem::path(out_path).replace_extension(".pt").string();
    }
    const std::string base = TempPath(".pt");
    {
      std::ofstream f(base, std::ios::binary);
      f << program;
    }
    const int rc = RunModelTool({"export-torchscript", "--torchscript", base, "--weights",
                                 out_path, "--out", torchscript_path});
    std::filesystem::remove(base);
    if (rc != 0) return Fail("model export", absl::InternalError("TorchScript export failed"));
    absl::StrAppend(&message, " and ", torchscript_path);
  }
  if (files->bom_path.empty()) {
    std::cerr << "tessera: model export: the coordinator sent no model card or bill of "
                 "materials (it predates them)\n";
  }
  if (out.json) {
    const nlohmann::json j = {
        {"run_id", run_id},
        {"round", header.round()},
        {"safetensors", out_path},
        {"torchscript", program.empty() ? "" : torchscript_path},
        {"sha256", crypto::HexEncode(header.model_sha256())},
        {"weights_file_sha256", files->weights_sha256_hex},
        {"model_card", files->model_card_path},
        {"bill_of_materials", files->bom_path},
        {"signed_by", files->signer},
        {"preprocessing", PreprocessingText(header.config().model())},
    };
    std::cout << j.dump() << "\n";
  } else {
    std::cout << message << " (" << record->tensors.size() << " tensors, "
              << HumanBytes(record->TotalBytes()) << ")\n";
    if (!files->model_card_path.empty()) {
      std::cout << "model card: " << files->model_card_path << "\n";
    }
    if (const std::string pre = PreprocessingText(header.config().model()); !pre.empty()) {
      std::cout << "preprocessing: " << pre << "\n";
    }
    if (!files->bom_path.empty()) {
      std::cout << "bill of materials: " << files->bom_path << " (signed by " << files->signer
                << ")\n";
    }
  }
  return 0;
}

}  // namespace tessera::cli

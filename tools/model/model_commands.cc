#include "tools/model/model_commands.h"

#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/training/local_model.h"
#include "core/base/status_macros.h"
#include "core/base/version.h"
#include "core/model/safetensors.h"

namespace tessera {
namespace {

std::map<std::string, std::string> BaseMetadata() {
  return {{"format", "pt"},
          {"tessera_format_version", kTesseraFormatVersion},
          {"tessera_version", kVersion}};
}

int64_t TotalElements(const ArrayRecord& record) {
  int64_t n = 0;
  for (const Tensor& t : record.tensors) n += t.numel();
  return n;
}

// "PK\x03\x04": TorchScript archives are zip files; safetensors starts with a header size.
absl::StatusOr<bool> IsZipFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 &&
         magic[3] == 4;
}

}  // namespace

absl::Status InitModel(absl::string_view architecture, uint64_t seed,
                       const std::string& out) {
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<LocalModel> model,
                           LocalModel::CreateBuiltin(architecture, seed, "cpu"));
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord weights, model->GetWeights());
  std::map<std::string, std::string> metadata = BaseMetadata();
  metadata["architecture"] = std::string(architecture);
  metadata["seed"] = absl::StrCat(seed);
  return WriteSafetensorsFile(out, weights, metadata);
}

absl::Status ImportTorchScript(const std::string& torchscript, const std::string& out) {
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<LocalModel> model,
                           LocalModel::LoadTorchScriptFile(torchscript, "cpu"));
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord weights, model->GetWeights());
  std::map<std::string, std::string> metadata = BaseMetadata();
  metadata["source"] = "torchscript";
  metadata["source_file"] = std::filesystem::path(torchscript).filename().string();
  return WriteSafetensorsFile(out, weights, metadata);
}

absl::Status ExportTorchScript(const std::string& base, const std::string& weights,
                               const std::string& out) {
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<LocalModel> model,
                           LocalModel::LoadTorchScriptFile(base, "cpu"));
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord record, ReadSafetensorsFile(weights));
  if (absl::Status s = model->SetWeights(record); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(weights, " does not fit ", base, ": ",
                                               s.message()));
  }
  return model->SaveTorchScript(out);
}

absl::StatusOr<ModelFileInfo> ReadModelFileInfo(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) {
    return absl::NotFoundError(absl::StrCat("no such file: ", path));
  }
  ModelFileInfo info;
  info.path = path;
  TESSERA_ASSIGN_OR_RETURN(bool zip, IsZipFile(path));
  if (zip) {
    info.format = ModelFileFormat::kTorchScript;
    TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<LocalModel> model,
                             LocalModel::LoadTorchScriptFile(path, "cpu"));
    TESSERA_ASSIGN_OR_RETURN(info.record, model->GetWeights());
    info.trainable_parameters = model->num_parameters();
  } else {
    info.format = ModelFileFormat::kSafetensors;
    absl::StatusOr<ArrayRecord> record = ReadSafetensorsFile(path, &info.metadata);
    if (!record.ok()) {
      return absl::Status(record.status().code(),
                          absl::StrCat("not a safetensors or TorchScript file: ",
                                       record.status().message()));
    }
    info.record = *std::move(record);
  }
  info.total_parameters = TotalElements(info.record);
  return info;
}

std::string FormatModelFileInfo(const ModelFileInfo& info, bool json) {
  const char* format =
      info.format == ModelFileFormat::kTorchScript ? "torchscript" : "safetensors";
  if (json) {
    nlohmann::ordered_json j;
    j["path"] = info.path;
    j["format"] = format;
    j["metadata"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : info.metadata) j["metadata"][k] = v;
    j["tensors"] = nlohmann::ordered_json::array();
    for (const Tensor& t : info.record.tensors) {
      j["tensors"].push_back(
          {{"name", t.name()}, {"dtype", std::string(DTypeName(t.dtype()))}, {"shape", t.shape()}});
    }
    j["num_tensors"] = info.record.tensors.size();
    j["total_parameters"] = info.total_parameters;
    j["total_bytes"] = info.record.TotalBytes();
    if (info.trainable_parameters) j["trainable_parameters"] = *info.trainable_parameters;
    return j.dump() + "\n";
  }
  std::string out = absl::StrCat(info.path, " (", format, ")\n");
  for (const auto& [k, v] : info.metadata) absl::StrAppend(&out, "  # ", k, ": ", v, "\n");
  for (const Tensor& t : info.record.tensors) {
    absl::StrAppend(&out, t.name(), " ", DTypeName(t.dtype()), " [",
                    absl::StrJoin(t.shape(), ","), "]\n");
  }
  absl::StrAppend(&out, info.record.tensors.size(), " tensors, ", info.total_parameters,
                  " parameters (all tensor elements), ", info.record.TotalBytes(), " bytes");
  if (info.trainable_parameters) {
    absl::StrAppend(&out, ", ", *info.trainable_parameters, " trainable");
  }
  out += "\n";
  return out;
}

}  // namespace tessera

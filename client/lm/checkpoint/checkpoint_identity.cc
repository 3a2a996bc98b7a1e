// CheckpointSha256: a checkpoint directory's identity, the SHA-256 of what
// `sha256sum <the files that define the model>` prints (hf_checkpoint.h).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/lm/checkpoint/hf_checkpoint.h"
#include "client/lm/checkpoint/hf_layout.h"
#include "core/base/status_macros.h"
#include "core/crypto/sha256.h"

namespace tessera::lm {
namespace {

namespace fs = std::filesystem;
using internal::IsFile;
using internal::JoinPath;
using internal::kConfigFile;

// Appends the line `sha256sum` prints for `name` with digest `hex` (GNU coreutils: a name
// holding a backslash or newline is escaped and the line starts with a backslash).
void AppendSha256sumLine(const std::string& hex, const std::string& name, std::string* out) {
  const bool escape = name.find_first_of("\\\n") != std::string::npos;
  if (escape) out->push_back('\\');
  absl::StrAppend(out, hex, "  ");
  for (char c : name) {
    if (escape && c == '\\') {
      out->append("\\\\");
    } else if (escape && c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
  out->push_back('\n');
}

absl::StatusOr<std::string> Sha256OfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  crypto::Sha256 hasher;
  std::string buffer(1 << 20, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n > 0) hasher.Update(absl::string_view(buffer.data(), static_cast<size_t>(n)));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return crypto::HexEncode(std::move(hasher).Finish());
}

bool IsIdentityFile(const std::string& name) {
  static const std::set<std::string>* fixed = new std::set<std::string>{
      "config.json",         "generation_config.json", "model.safetensors.index.json",
      "tokenizer.json",      "tokenizer.model",        "tokenizer_config.json",
      "special_tokens_map.json"};
  if (fixed->contains(name)) return true;
  return absl::StartsWith(name, "model") && absl::EndsWith(name, ".safetensors");
}

}  // namespace

absl::StatusOr<std::string> CheckpointSha256(const std::string& dir) {
  const std::string config_path = JoinPath(dir, kConfigFile);
  if (!IsFile(config_path)) return absl::NotFoundError(absl::StrCat(config_path, ": no such file"));
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (IsIdentityFile(name) && IsFile(entry.path().string())) names.push_back(name);
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  std::sort(names.begin(), names.end());
  std::string listing;
  for (const std::string& name : names) {
    TESSERA_ASSIGN_OR_RETURN(std::string hex, Sha256OfFile(JoinPath(dir, name)));
    AppendSha256sumLine(hex, name, &listing);
  }
  return crypto::HexEncode(crypto::Sha256Digest(listing));
}

}  // namespace tessera::lm

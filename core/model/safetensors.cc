#include "core/model/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/byte_order.h"
#include "core/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

using Json = nlohmann::ordered_json;

constexpr absl::string_view kMetadataKey = "__metadata__";
constexpr size_t kLengthBytes = 8;

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("safetensors: ", what));
}


struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin;
  uint64_t end;
};

absl::StatusOr<uint64_t> ReadUnsigned(const Json& v, absl::string_view what) {
  if (!v.is_number_unsigned())
    return Invalid(absl::StrCat(what, " must be a non-negative integer"));
  return v.get<uint64_t>();
}

absl::StatusOr<Entry> ParseEntry(const std::string& name, const Json& info) {
  const std::string where = absl::StrCat("tensor \"", name, "\"");
  if (!info.is_object())
    return Invalid(absl::StrCat(where, ": entry is not an object"));
  for (const auto& [key, value] : info.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      return Invalid(absl::StrCat(where, ": unknown key \"", key, "\""));
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!info.contains(key))
      return Invalid(absl::StrCat(where, ": missing \"", key, "\""));
  }
  Entry e;
  e.name = name;

  const Json& dtype = info["dtype"];
  if (!dtype.is_string())
    return Invalid(absl::StrCat(where, ": dtype is not a string"));
  const std::string& dtype_name = dtype.get_ref<const std::string&>();
  absl::StatusOr<DType> parsed = DTypeFromName(dtype_name);
  if (!parsed.ok() || DTypeSafetensorsName(*parsed) != dtype_name) {
    return Invalid(
        absl::StrCat(where, ": unsupported dtype \"", dtype_name, "\""));
  }
  e.dtype = *parsed;

  const Json& shape = info["shape"];
  if (!shape.is_array())
    return Invalid(absl::StrCat(where, ": shape is not an array"));
  if (shape.size() > kMaxTensorRank) {
    return Invalid(absl::StrCat(where, ": rank ", shape.size(), " exceeds ",
                                kMaxTensorRank));
  }
  for (const Json& dim : shape) {
    TESSERA_ASSIGN_OR_RETURN(
        uint64_t d, ReadUnsigned(dim, absl::StrCat(where, ": shape dim")));
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(absl::StrCat(where, ": shape dim ", d, " too large"));
    }
    e.shape.push_back(static_cast<int64_t>(d));
  }

  const Json& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    return Invalid(absl::StrCat(where, ": data_offsets must be [begin, end]"));
  }
  TESSERA_ASSIGN_OR_RETURN(
      e.begin, ReadUnsigned(offsets[0], absl::StrCat(where, ": begin")));
  TESSERA_ASSIGN_OR_RETURN(
      e.end, ReadUnsigned(offsets[1], absl::StrCat(where, ": end")));
  if (e.end < e.begin) {
    return Invalid(absl::StrCat(where, ": data_offsets [", e.begin, ", ", e.end,
                                "] end before begin"));
  }

  absl::StatusOr<int64_t> numel = NumElements(e.shape);
  if (!numel.ok())
    return Invalid(absl::StrCat(where, ": ", numel.status().message()));
  const uint64_t elem = DTypeSize(e.dtype);
  const uint64_t bytes = e.end - e.begin;
  if (static_cast<uint64_t>(*numel) > bytes / elem + 1 ||
      static_cast<uint64_t>(*numel) * elem != bytes) {
    return Invalid(absl::StrCat(
        where, ": ", dtype_name, "[", absl::StrJoin(e.shape, ","), "] needs ",
        *numel, " x ", elem, " bytes, data_offsets span ", bytes));
  }
  return e;
}

// Parses the JSON header, rejecting duplicate keys in any object (nlohmann
// would keep the last one silently).
absl::StatusOr<Json> ParseHeaderJson(absl::string_view header) {
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (event == Json::parse_event_t::key && !keys.empty() &&
               parsed.is_string()) {
      if (!keys.back().insert(parsed.get<std::string>()).second &&
          duplicate.empty()) {
        duplicate = parsed.get<std::string>();
      }
    }
    return true;
  };
  Json json;
  try {
    json = Json::parse(header.begin(), header.end(), callback);
  } catch (const Json::exception& e) {
    return Invalid(absl::StrCat("header is not valid JSON: ", e.what()));
  }
  if (!duplicate.empty())
    return Invalid(absl::StrCat("duplicate header key \"", duplicate, "\""));
  if (!json.is_object()) return Invalid("header is not a JSON object");
  return json;
}

absl::Status ErrnoError(int err, absl::string_view what,
                        absl::string_view path) {
  return absl::ErrnoToStatus(err, absl::StrCat(what, " ", path));
}

absl::Status WriteAll(int fd, absl::string_view bytes,
                      const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write", path);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> SerializeSafetensors(
    const ArrayRecord& record,
    const std::map<std::string, std::string>& metadata) {
  TESSERA_RETURN_IF_ERROR(CheckUniqueNames(record));
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header[std::string(kMetadataKey)] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const Tensor& t : record.tensors) {
    if (t.name() == kMetadataKey)
      return Invalid("a tensor may not be named \"__metadata__\"");
    Json info = Json::object();
    info["dtype"] = std::string(DTypeSafetensorsName(t.dtype()));
    info["shape"] = t.shape();
    info["data_offsets"] = {offset, offset + t.byte_size()};
    header[t.name()] = std::move(info);
    offset += t.byte_size();
  }
  std::string json;
  try {
    json = header.dump(-1, ' ', /*ensure_ascii=*/false,
                       Json::error_handler_t::strict);
  } catch (const Json::exception& e) {
    return Invalid(
        absl::StrCat("tensor name or metadata is not valid UTF-8: ", e.what()));
  }
  json.append((8 - json.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(kLengthBytes + json.size() + offset);
  AppendLittleEndian(out, json.size(), 8);
  out += json;
  for (const Tensor& t : record.tensors) out += t.data();
  return out;
}

absl::StatusOr<ArrayRecord> ParseSafetensors(
    absl::string_view bytes, std::map<std::string, std::string>* metadata) {
  if (bytes.size() < kLengthBytes) {
    return Invalid(absl::StrCat("buffer of ", bytes.size(),
                                " bytes has no 8-byte header length"));
  }
  const uint64_t n = LoadLittleEndian(bytes.data(), 8);
  if (n > kMaxSafetensorsHeaderBytes) {
    return Invalid(absl::StrCat("header length ", n, " exceeds the limit of ",
                                kMaxSafetensorsHeaderBytes));
  }
  if (n > bytes.size() - kLengthBytes) {
    return Invalid(absl::StrCat("header length ", n, " exceeds the ",
                                bytes.size() - kLengthBytes,
                                " bytes after the length"));
  }
  const absl::string_view header = bytes.substr(kLengthBytes, n);
  if (header.empty() || header[0] != '{')
    return Invalid("header does not start with '{'");
  const absl::string_view data = bytes.substr(kLengthBytes + n);
  TESSERA_ASSIGN_OR_RETURN(Json json, ParseHeaderJson(header));

  std::map<std::string, std::string> meta;
  std::vector<Entry> entries;
  for (const auto& [key, value] : json.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) return Invalid("__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          return Invalid(
              absl::StrCat("__metadata__ \"", mk, "\" is not a string"));
        meta[mk] = mv.get<std::string>();
      }
      continue;
    }
    TESSERA_ASSIGN_OR_RETURN(Entry e, ParseEntry(key, value));
    entries.push_back(std::move(e));
  }

  std::stable_sort(
      entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
      });
  uint64_t expected = 0;
  for (const Entry& e : entries) {
    if (e.begin != expected) {
      return Invalid(absl::StrCat(
          "tensor \"", e.name, "\": data_offsets [", e.begin, ", ", e.end, "] ",
          e.begin < expected ? "overlap" : "leave a gap", " (expected begin ",
          expected, ")"));
    }
    expected = e.end;
  }
  if (expected != data.size()) {
    return Invalid(absl::StrCat("tensors cover ", expected,
                                " bytes but the data section has ",
                                data.size()));
  }

  ArrayRecord record;
  record.tensors.reserve(entries.size());
  for (Entry& e : entries) {
    std::string payload(data.substr(e.begin, e.end - e.begin));
    absl::StatusOr<Tensor> t = Tensor::Create(
        std::move(e.name), e.dtype, std::move(e.shape), std::move(payload));
    if (!t.ok()) return Invalid(t.status().message());
    record.tensors.push_back(*std::move(t));
  }
  if (metadata != nullptr) *metadata = std::move(meta);
  return record;
}

absl::Status WriteSafetensorsFile(
    const std::string& path, const ArrayRecord& record,
    const std::map<std::string, std::string>& metadata) {
  TESSERA_ASSIGN_OR_RETURN(std::string bytes,
                           SerializeSafetensors(record, metadata));
  static std::atomic<uint64_t> counter{0};
  const std::string tmp =
      absl::StrCat(path, ".tmp.", ::getpid(), ".", counter++);
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, "cannot create", tmp);
  absl::Status status = WriteAll(fd, bytes, tmp);
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoError(errno, "fsync", tmp);
  if (::close(fd) != 0 && status.ok()) status = ErrnoError(errno, "close", tmp);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoError(errno, "cannot rename to", path);
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  // Make the rename itself durable.
  const std::filesystem::path parent =
      std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return ErrnoError(errno, "cannot open directory", dir);
  if (::fsync(dir_fd) != 0 && errno != EINVAL)
    status = ErrnoError(errno, "fsync", dir);
  ::close(dir_fd);
  return status;
}

absl::StatusOr<ArrayRecord> ReadSafetensorsFile(
    const std::string& path, std::map<std::string, std::string>* metadata) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "cannot open", path);
  std::string bytes;
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_size > 0)
    bytes.resize(static_cast<size_t>(st.st_size) + 1);  // +1: room to see EOF
  size_t got = 0;
  for (;;) {
    if (got == bytes.size())
      bytes.resize(bytes.size() + (1 << 16));  // file grew
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoError(err, "read", path);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  bytes.resize(got);
  ::close(fd);
  absl::StatusOr<ArrayRecord> record = ParseSafetensors(bytes, metadata);
  if (!record.ok()) {
    return absl::Status(record.status().code(),
                        absl::StrCat(path, ": ", record.status().message()));
  }
  return record;
}

}  // namespace tessera

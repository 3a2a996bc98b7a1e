#include "client/data/idx_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/byte_order.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace {

constexpr uint8_t kTypeUnsignedByte = 0x08;
// Refuse headers that claim more than this many bytes of payload (corrupt files).
constexpr uint64_t kMaxPayloadBytes = 8ull << 30;
// The most a read allocates ahead of the bytes the file has delivered.
constexpr uint64_t kReadBlockBytes = 64ull << 20;

struct GzFileCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzFileCloser>;

// An opened IDX file positioned after its header.
struct IdxFile {
  GzFile file;
  std::vector<uint64_t> dims;
};

// Reads exactly `bytes` bytes into `out`. The buffer grows with the data read (at most
// kReadBlockBytes ahead of it), so a header that claims gigabytes costs memory only when the
// file really holds them.
absl::Status ReadExactly(gzFile f, const std::string& path, std::vector<unsigned char>* out,
                         uint64_t bytes, absl::string_view what) {
  out->clear();
  uint64_t done = 0;
  while (done < bytes) {
    const auto chunk = static_cast<unsigned>(std::min<uint64_t>(bytes - done, kReadBlockBytes));
    out->resize(done + chunk);
    const int n = gzread(f, out->data() + done, chunk);
    if (n < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": cannot read ", what, ": ", msg ? msg : "zlib error"));
    }
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": truncated ", what,
                                                     ": expected ", bytes,
                                                     " bytes, got ", done));
    }
    done += static_cast<uint64_t>(n);
  }
  out->resize(done);
  return absl::OkStatus();
}

absl::StatusOr<IdxFile> OpenIdx(const std::string& path, int want_magic_dims,
                                absl::string_view kind) {
  if (!std::filesystem::is_regular_file(path)) {
    return absl::NotFoundError(absl::StrCat(kind, " file not found: ", path));
  }
  // gzopen reads uncompressed files transparently.
  GzFile file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", kind, " file ", path, ": ", std::strerror(errno)));
  }
  std::vector<unsigned char> magic;
  TESSERA_RETURN_IF_ERROR(ReadExactly(file.get(), path, &magic, 4, "IDX header"));
  if (magic[0] != 0 || magic[1] != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": bad IDX magic number (first two bytes must be zero); not an IDX file"));
  }
  if (magic[2] != kTypeUnsignedByte) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": unsupported IDX element type 0x", absl::Hex(magic[2], absl::kZeroPad2),
        "; only unsigned byte (0x08) is supported"));
  }
  if (magic[3] != want_magic_dims) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": bad IDX magic number 0x0000", absl::Hex(magic[2], absl::kZeroPad2),
        absl::Hex(magic[3], absl::kZeroPad2), "; ", kind, " files have 0x000008",
        absl::Hex(want_magic_dims, absl::kZeroPad2)));
  }
  IdxFile idx;
  idx.dims.resize(magic[3]);
  uint64_t payload = 1;
  for (uint64_t& d : idx.dims) {
    std::vector<unsigned char> be;
    TESSERA_RETURN_IF_ERROR(ReadExactly(file.get(), path, &be, 4, "IDX dimensions"));
    d = LoadBigEndian(be.data(), 4);
    payload *= std::max<uint64_t>(d, 1);
    if (payload > kMaxPayloadBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": implausible IDX dimensions (over ", kMaxPayloadBytes,
                       " bytes)"));
    }
  }
  for (size_t i = 1; i < idx.dims.size(); ++i) {
    if (idx.dims[i] == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": IDX dimension ", i, " is zero"));
    }
  }
  idx.file = std::move(file);
  return idx;
}

}  // namespace

absl::StatusOr<Dataset> LoadIdxDataset(const std::string& images_path,
                                       const std::string& labels_path, size_t limit,
                                       double mean, double stddev) {
  if (!(stddev > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoadIdxDataset: stddev must be > 0, got ", stddev));
  }
  TESSERA_ASSIGN_OR_RETURN(IdxFile images, OpenIdx(images_path, 3, "images"));
  TESSERA_ASSIGN_OR_RETURN(IdxFile labels, OpenIdx(labels_path, 1, "labels"));
  if (images.dims[0] != labels.dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat(
        "IDX count mismatch: ", images_path, " has ", images.dims[0], " images but ",
        labels_path, " has ", labels.dims[0], " labels"));
  }
  uint64_t count = images.dims[0];
  if (limit > 0) count = std::min<uint64_t>(count, limit);

  Dataset data;
  data.example_shape = {1, static_cast<int64_t>(images.dims[1]),
                        static_cast<int64_t>(images.dims[2])};
  const uint64_t example_size = images.dims[1] * images.dims[2];

  std::vector<unsigned char> raw;
  TESSERA_RETURN_IF_ERROR(
      ReadExactly(images.file.get(), images_path, &raw, count * example_size, "pixel data"));
  std::vector<unsigned char> raw_labels;
  TESSERA_RETURN_IF_ERROR(
      ReadExactly(labels.file.get(), labels_path, &raw_labels, count, "label data"));

  // (p / 255 - mean) / stddev as one multiply-add per pixel.
  float lut[256];
  for (int p = 0; p < 256; ++p) {
    lut[p] = static_cast<float>((p / kPixelScale - mean) / stddev);
  }
  data.features.resize(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) data.features[i] = lut[raw[i]];

  int64_t max_label = 0;
  data.labels.resize(count);
  for (size_t i = 0; i < count; ++i) {
    data.labels[i] = raw_labels[i];
    max_label = std::max<int64_t>(max_label, raw_labels[i]);
  }
  data.num_classes = std::max<int64_t>(kIdxMinNumClasses, max_label + 1);
  return data;
}

absl::StatusOr<Dataset> LoadIdxSplit(const std::string& dir, absl::string_view split,
                                     size_t limit) {
  std::string prefix;
  if (split == "train") {
    prefix = "train";
  } else if (split == "test") {
    prefix = "t10k";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown IDX split \"", split, "\"; want \"train\" or \"test\""));
  }
  auto find = [&](absl::string_view kind,
                  absl::string_view idx) -> absl::StatusOr<std::string> {
    std::vector<std::string> tried;
    for (absl::string_view sep : {"-", "."}) {
      for (absl::string_view ext : {".gz", ""}) {
        std::string name = absl::StrCat(prefix, "-", kind, sep, idx, "-ubyte", ext);
        std::filesystem::path path = std::filesystem::path(dir) / name;
        if (std::filesystem::is_regular_file(path)) return path.string();
        tried.push_back(std::move(name));
      }
    }
    return absl::NotFoundError(absl::StrCat("no ", split, " ", kind, " file in ", dir,
                                            " (tried ", absl::StrJoin(tried, ", "), ")"));
  };
  TESSERA_ASSIGN_OR_RETURN(std::string images, find("images", "idx3"));
  TESSERA_ASSIGN_OR_RETURN(std::string labels, find("labels", "idx1"));
  return LoadIdxDataset(images, labels, limit);
}

}  // namespace tessera

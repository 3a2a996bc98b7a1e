// File: fuzz_util.h
// Helpers shared by the fuzz targets (docs/fuzzing.md): splitting one input into the several
// files a decoder reads, and a private temporary directory to write them into.
#ifndef TESSERA_TESTS_FUZZ_FUZZ_UTIL_H_
#define TESSERA_TESTS_FUZZ_FUZZ_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace tessera::fuzz {

// Separates the files of a multi-file input (a checkpoint directory, an IDX images/labels
// pair). Text seeds stay readable; a mutation that breaks the separator merges two files,
// which is one more malformed input.
inline constexpr absl::string_view kFileSeparator = "\n=====tessera-fuzz-file=====\n";

// The parts of `data` between separators; at least one (possibly empty).
inline std::vector<std::string> SplitFiles(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  return absl::StrSplit(text, kFileSeparator);
}

// Aborts with `what` when a decoder breaks a promise the fuzzer checks (libFuzzer reports
// the abort as a crash and keeps the input).
inline void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz check failed: %s\n", what);
    std::abort();
  }
}

// With TESSERA_FUZZ_VERBOSE set, prints the decoder's verdict on the input (to see which
// seeds parse: `TESSERA_FUZZ_VERBOSE=1 bin/fuzz_csv_replay tests/fuzz/corpus/csv`).
inline void Report(const absl::Status& status) {
  static const bool verbose = std::getenv("TESSERA_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "  -> %s\n", status.ToString().c_str());
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                          "/tessera-fuzz-XXXXXX";
    Check(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  // Writes `bytes` to `name` in the directory and returns its path.
  std::string Write(const std::string& name, absl::string_view bytes) const {
    const std::string file = path_ + "/" + name;
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    Check(out.good(), "writing a temporary file");
    return file;
  }

 private:
  std::string path_;
};

}  // namespace tessera::fuzz

#endif  // TESSERA_TESTS_FUZZ_FUZZ_UTIL_H_

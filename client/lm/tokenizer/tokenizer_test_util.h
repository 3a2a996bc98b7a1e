// File: tokenizer_test_util.h
// Test helpers: a scratch folder, whole-file I/O, and running the independent
// Python reference (client/lm/testing/tokenizer_reference.py) whose output the
// tests compare with.
#ifndef TESSERA_CLIENT_LM_TOKENIZER_TOKENIZER_TEST_UTIL_H_
#define TESSERA_CLIENT_LM_TOKENIZER_TOKENIZER_TEST_UTIL_H_

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tessera::lm::testing {

// A fresh folder under the system temp folder, removed by the destructor.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name) {
    path_ =
        std::filesystem::temp_directory_path() / absl::StrCat("tessera_", name, "_", ::getpid());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// Space-separated ids (one line) as written by the reference.
inline std::vector<int32_t> ParseIds(const std::string& line) {
  std::vector<int32_t> ids;
  for (absl::string_view t : absl::StrSplit(line, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    int32_t id = -1;
    if (!absl::SimpleAtoi(t, &id)) return {};
    ids.push_back(id);
  }
  return ids;
}

// Runs the reference script with `args`; its stdout, and its exit status in
// *status.
inline std::string RunReference(const std::string& args, int* status) {
  const std::string cmd = absl::StrCat("/usr/bin/python3 ", TESSERA_SOURCE_DIR,
                                       "/client/lm/testing/tokenizer_reference.py ", args);
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    *status = -1;
    return "";
  }
  std::string output;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  *status = ::pclose(pipe);
  return output;
}

}  // namespace tessera::lm::testing

#endif  // TESSERA_CLIENT_LM_TOKENIZER_TOKENIZER_TEST_UTIL_H_

// File: checkpoint_test_util.h
// Test helpers for client/lm/checkpoint: temporary folders, shell commands, and the tiny
// reference checkpoints that client/lm/testing/hf_reference.py writes (once per test binary).
#ifndef TESSERA_CLIENT_LM_CHECKPOINT_CHECKPOINT_TEST_UTIL_H_
#define TESSERA_CLIENT_LM_CHECKPOINT_CHECKPOINT_TEST_UTIL_H_

#include <stdlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "client/lm/checkpoint/model_config.h"

namespace tessera::lm {

#ifndef TESSERA_SOURCE_DIR
#error "TESSERA_SOURCE_DIR must name the source tree"
#endif

// "name [d0,d1]" for each expected tensor, for comparing layouts in one assertion.
inline std::vector<std::string> Describe(const std::vector<ExpectedTensor>& tensors) {
  std::vector<std::string> out;
  for (const ExpectedTensor& t : tensors) {
    std::string s = t.name + " [";
    for (size_t i = 0; i < t.shape.size(); ++i) s += (i ? "," : "") + std::to_string(t.shape[i]);
    out.push_back(s + "]");
  }
  return out;
}

// Removes every folder made by MakeTempDir when the test binary exits.
class TempDirs {
 public:
  static TempDirs& Get() {
    static TempDirs dirs;
    return dirs;
  }
  std::string Make() {
    const char* base = getenv("TEST_TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/lm_ckpt_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed for " << pattern;
      return "/nonexistent";
    }
    dirs_.push_back(pattern);
    return pattern;
  }
  ~TempDirs() {
    std::error_code ec;
    for (const std::string& d : dirs_) std::filesystem::remove_all(d, ec);
  }

 private:
  std::vector<std::string> dirs_;
};

inline std::string MakeTempDir() { return TempDirs::Get().Make(); }

// Runs `command` with /bin/sh; returns its exit status and sets *output to its stdout.
inline int RunCommand(const std::string& command, std::string* output) {
  output->clear();
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output->append(buffer.data(), n);
  return pclose(pipe);
}

// The folder hf_reference.py wrote its variants into, or "" when /usr/bin/python3 has no
// torch (the caller skips). A failing script is a test failure.
inline const std::string& ReferenceDir() {
  static const std::string* dir = [] {
    std::string out;
    if (RunCommand("/usr/bin/python3 -c 'import torch' 2>/dev/null", &out) != 0) {
      return new std::string();
    }
    const std::string d = MakeTempDir() + "/ref";
    const std::string command = std::string("/usr/bin/python3 ") + TESSERA_SOURCE_DIR +
                                "/client/lm/testing/hf_reference.py " + d + " 2>&1";
    if (RunCommand(command, &out) != 0) {
      ADD_FAILURE() << command << " failed:\n" << out;
      return new std::string();
    }
    return new std::string(d);
  }();
  return *dir;
}

#define TESSERA_REQUIRE_REFERENCE()                                        \
  do {                                                                     \
    if (ReferenceDir().empty()) GTEST_SKIP() << "/usr/bin/python3 lacks torch"; \
  } while (0)

// A copy of reference variant `name` in a fresh temporary folder (to be modified).
inline std::string CopyOfVariant(const std::string& name) {
  const std::string to = MakeTempDir() + "/" + name;
  std::error_code ec;
  std::filesystem::copy(ReferenceDir() + "/" + name, to,
                        std::filesystem::copy_options::recursive, ec);
  EXPECT_FALSE(ec) << ec.message();
  return to;
}

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_CHECKPOINT_CHECKPOINT_TEST_UTIL_H_

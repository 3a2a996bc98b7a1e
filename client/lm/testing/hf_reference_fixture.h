// File: hf_reference_fixture.h
// A GoogleTest fixture whose suite first runs client/lm/testing/hf_reference.py (Debian's
// python3-torch) into a temporary directory: tiny Hugging Face checkpoints of each supported
// model_type with input ids and reference logits from an independent PyTorch forward pass.
// Header-only, for the tests of client/lm (needs TESSERA_SOURCE_DIR defined).
#ifndef TESSERA_CLIENT_LM_TESTING_HF_REFERENCE_FIXTURE_H_
#define TESSERA_CLIENT_LM_TESTING_HF_REFERENCE_FIXTURE_H_

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace tessera::lm::testing {

class HfReferenceFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(::testing::TempDir(), "/hf_reference_", ::getpid()));
    std::filesystem::create_directories(*dir_);
    const std::string cmd = absl::StrCat("/usr/bin/python3 ", TESSERA_SOURCE_DIR,
                                         "/client/lm/testing/hf_reference.py ", *dir_, " > ",
                                         *dir_, "/log.txt 2>&1");
    status_ = std::system(cmd.c_str());
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(status_, 0) << "hf_reference.py failed; see " << *dir_ << "/log.txt";
  }

  // The directory of one variant ("llama", "qwen2", "llama_lora", ...).
  static std::string Path(const std::string& variant) { return *dir_ + "/" + variant; }

  static std::vector<std::vector<int32_t>> InputIds(const std::string& variant) {
    std::ifstream in(Path(variant) + "/input_ids.json");
    return nlohmann::json::parse(in).get<std::vector<std::vector<int32_t>>>();
  }

 private:
  static inline std::string* dir_ = nullptr;
  static inline int status_ = -1;
};

}  // namespace tessera::lm::testing

#endif  // TESSERA_CLIENT_LM_TESTING_HF_REFERENCE_FIXTURE_H_

// Test support for LoadTextData's tests: a tokenizer with one id per byte and a fixture that
// writes a JSON-lines file into a fresh directory.
#ifndef TESSERA_CLIENT_LM_TEXT_TEXT_DATA_TEST_SUPPORT_H_
#define TESSERA_CLIENT_LM_TEXT_TEXT_DATA_TEST_SUPPORT_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/lm/text/text_data.h"

namespace tessera::lm::text_test {


inline constexpr int32_t kBos = 1;
inline constexpr int32_t kEos = 2;
inline constexpr int32_t kI = kIgnoreLabel;

// One token per byte: byte b is id b + 3; BOS 1 (prepended with add_special_tokens when
// `add_bos`), EOS 2, pad 0.
class ByteTokenizer : public Tokenizer {
 public:
  explicit ByteTokenizer(bool add_bos = true, bool has_eos = true)
      : add_bos_(add_bos), has_eos_(has_eos) {}
  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              const EncodeOptions& options) const override {
    std::vector<int32_t> ids;
    if (options.add_special_tokens && add_bos_) ids.push_back(kBos);
    for (unsigned char c : text) ids.push_back(c + 3);
    return ids;
  }
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t>, bool) const override {
    return absl::UnimplementedError("not needed");
  }
  int32_t vocab_size() const override { return 259; }
  std::optional<int32_t> bos_id() const override { return kBos; }
  std::optional<int32_t> eos_id() const override {
    return has_eos_ ? std::optional<int32_t>(kEos) : std::nullopt;
  }
  std::optional<int32_t> pad_id() const override { return 0; }
  std::string kind() const override { return "bytes"; }

 private:
  bool add_bos_;
  bool has_eos_;
};

// The ids the byte tokenizer gives `s` (without BOS).
inline std::vector<int32_t> Bytes(const std::string& s) {
  std::vector<int32_t> ids;
  for (unsigned char c : s) ids.push_back(c + 3);
  return ids;
}

class TextDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("lm_text_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& contents) {
    const std::string path = (dir_ / "data.jsonl").string();
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  static TextDataOptions NoHeldOut(uint32_t max_seq_length, bool packing = true) {
    TextDataOptions o;
    o.max_seq_length = max_seq_length;
    o.packing = packing;
    o.heldout_fraction = 0;
    return o;
  }

  std::filesystem::path dir_;
  ByteTokenizer tok_;
};
}  // namespace tessera::lm::text_test

#endif  // TESSERA_CLIENT_LM_TEXT_TEXT_DATA_TEST_SUPPORT_H_

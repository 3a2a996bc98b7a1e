#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "client/training/testing/tiny_torchscript.h"
#include "core/base/testing/status_matchers.h"
#include "core/model/safetensors.h"
#include "tools/model/bench_train.h"
#include "tools/model/model_commands.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunTool(const std::string& args) {
  CommandResult result;
  const std::string command = std::string(TESSERA_MODEL_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

TEST(ModelCommandsTest, InitWritesWeightsWithMetadata) {
  const std::string out = TempPath("init.safetensors");
  TESSERA_ASSERT_OK(InitModel("niid_cnn", 7, out));
  std::map<std::string, std::string> metadata;
  absl::StatusOr<ArrayRecord> record = ReadSafetensorsFile(out, &metadata);
  TESSERA_ASSERT_OK(record);
  EXPECT_EQ(record->tensors.size(), 10u);
  EXPECT_EQ(metadata["architecture"], "niid_cnn");
  EXPECT_EQ(metadata["seed"], "7");
  EXPECT_EQ(metadata["tessera_format_version"], kTesseraFormatVersion);

  absl::StatusOr<ModelFileInfo> info = ReadModelFileInfo(out);
  TESSERA_ASSERT_OK(info);
  EXPECT_EQ(info->format, ModelFileFormat::kSafetensors);
  EXPECT_EQ(info->total_parameters, 44426);
  const std::string text = FormatModelFileInfo(*info, false);
  EXPECT_THAT(text, HasSubstr("conv1.weight float32 [6,1,5,5]\n"));
  EXPECT_THAT(text, HasSubstr("44426 parameters"));

  EXPECT_THAT(InitModel("lenet", 1, TempPath("x.safetensors")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lenet")));
}

TEST(ModelCommandsTest, ImportExportTorchScriptRoundTrip) {
  const std::string base = TempPath("tool_base.pt");
  const std::string other = TempPath("tool_other.pt");
  TESSERA_ASSERT_OK(WriteTinyTorchScript(base, 1));
  TESSERA_ASSERT_OK(WriteTinyTorchScript(other, 2));
  // The weights of `other` exported into the program of `base`.
  const std::string weights = TempPath("tool_other.safetensors");
  TESSERA_ASSERT_OK(ImportTorchScript(other, weights));
  const std::string out = TempPath("tool_out.pt");
  TESSERA_ASSERT_OK(ExportTorchScript(base, weights, out));

  absl::StatusOr<ModelFileInfo> info = ReadModelFileInfo(out);
  TESSERA_ASSERT_OK(info);
  EXPECT_EQ(info->format, ModelFileFormat::kTorchScript);
  EXPECT_EQ(info->trainable_parameters, 19);
  EXPECT_EQ(info->total_parameters, 19 + 4 + 1);
  absl::StatusOr<ArrayRecord> want = ReadSafetensorsFile(weights);
  TESSERA_ASSERT_OK(want);
  TESSERA_ASSERT_OK(CheckSameLayout(*want, info->record));
  for (size_t i = 0; i < want->tensors.size(); ++i) {
    EXPECT_EQ(want->tensors[i].data(), info->record.tensors[i].data());
  }
  // Weights of another model do not fit.
  const std::string cnn = TempPath("tool_cnn.safetensors");
  TESSERA_ASSERT_OK(InitModel("mlp", 1, cnn));
  EXPECT_THAT(ExportTorchScript(base, cnn, TempPath("never.pt")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lack the model's tensor")));
  EXPECT_THAT(ImportTorchScript(cnn, TempPath("never.safetensors")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ModelCommandsTest, InfoJsonAndErrors) {
  const std::string base = TempPath("info.pt");
  TESSERA_ASSERT_OK(WriteTinyTorchScript(base));
  absl::StatusOr<ModelFileInfo> info = ReadModelFileInfo(base);
  TESSERA_ASSERT_OK(info);
  const nlohmann::json j = nlohmann::json::parse(FormatModelFileInfo(*info, true));
  EXPECT_EQ(j["format"], "torchscript");
  EXPECT_EQ(j["num_tensors"], 5);
  EXPECT_EQ(j["tensors"][4]["name"], "bn.num_batches_tracked");
  EXPECT_EQ(j["tensors"][4]["dtype"], "int64");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json::array({3, 4}));
  EXPECT_EQ(j["trainable_parameters"], 19);

  EXPECT_THAT(ReadModelFileInfo(TempPath("missing.safetensors")),
              StatusIs(absl::StatusCode::kNotFound));
  const std::string junk = TempPath("junk.bin");
  FILE* f = fopen(junk.c_str(), "w");
  fputs("hello, this is not a model", f);
  fclose(f);
  EXPECT_THAT(ReadModelFileInfo(junk), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("not a safetensors")));
}

TEST(BenchTrainTest, MeasuresThroughput) {
  BenchTrainOptions options;
  options.architecture = "mlp";
  options.seconds = 0.2;
  options.num_examples = 256;
  absl::StatusOr<BenchTrainResult> r = BenchTrain(options);
  TESSERA_ASSERT_OK(r);
  EXPECT_GT(r->images_per_second, 0);
  EXPECT_GE(r->seconds, 0.2);
  EXPECT_EQ(r->data, "synthetic");
  EXPECT_THAT(FormatBenchTrainResult(*r, false), HasSubstr("images/s"));
  options.batch_size = 0;
  EXPECT_THAT(BenchTrain(options), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BenchTrainTest, PerCallTrainsOneEpochOfEachSlice) {
  BenchTrainOptions options;
  options.architecture = "mlp";
  options.seconds = 0.1;
  options.num_examples = 100;
  options.batch_size = 4;
  options.examples_per_call = 6;  // one step of 4 and one of 2 per call
  absl::StatusOr<BenchTrainResult> r = BenchTrain(options);
  TESSERA_ASSERT_OK(r);
  EXPECT_EQ(r->examples_per_call, 6u);
  EXPECT_GT(r->images, 0u);
  EXPECT_EQ(r->images % 6, 0u);
  EXPECT_EQ(r->steps, r->images / 6 * 2);
  options.examples_per_call = 101;
  EXPECT_THAT(BenchTrain(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("examples per call")));
}

TEST(ModelToolBinaryTest, InitInfoAndBadFlag) {
  const std::string out = TempPath("bin_init.safetensors");
  CommandResult init = RunTool("init --architecture mlp --seed 3 --out " + out);
  EXPECT_EQ(init.exit_code, 0) << init.output;
  CommandResult info = RunTool("info --json " + out);
  ASSERT_EQ(info.exit_code, 0) << info.output;
  const nlohmann::json j = nlohmann::json::parse(info.output);
  EXPECT_EQ(j["total_parameters"], 199210);
  EXPECT_EQ(j["metadata"]["architecture"], "mlp");

  CommandResult bad = RunTool("init --architecture mlp --seed 3 --out " + out + " --bogus");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("--bogus"));
  CommandResult bad_seed = RunTool("init --architecture mlp --seed minus --out " + out);
  EXPECT_EQ(bad_seed.exit_code, 1);
  EXPECT_THAT(bad_seed.output, HasSubstr("--seed"));
  CommandResult missing = RunTool("info /nonexistent/w.safetensors");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr("tessera-model: error: "));
  EXPECT_THAT(missing.output, HasSubstr("/nonexistent/w.safetensors"));
  EXPECT_EQ(std::count(missing.output.begin(), missing.output.end(), '\n'), 1);
}

TEST(ModelToolBinaryTest, BenchLmSizesAreTheAdapterAndTheModel) {
  // Hand-derived for the tiny preset (hidden 128, 4 layers, 4 heads of 32, 2 key-value
  // heads, intermediate 352, vocabulary 1,024, tied) with r = 8 on q and v: per layer
  // q: A 8x128 + B 128x8 = 2,048 and v: A 8x128 + B 64x8 = 1,536 -> 3,584 x 4 layers = 14,336
  // float32 = 57,344 bytes. Base: embedding 131,072 + 4 x (q 16,384 + k 8,192 + v 8,192 +
  // o 16,384 + 3 x 45,056 + 2 x 128 norms) + final norm 128 = 869,504 -> 3,478,016 bytes.
  CommandResult r = RunTool("bench-lm --preset tiny --sizes-only --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["adapter_bytes"], 57344);
  EXPECT_EQ(j["base_parameters"], 869504);
  EXPECT_EQ(j["full_bytes"], 3478016);
}

}  // namespace
}  // namespace tessera

#include "client/training/local_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "client/training/device.h"
#include "client/training/testing/synthetic_images.h"
#include "client/training/testing/tiny_torchscript.h"
#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Bitwise equality of names, dtypes, shapes and bytes.
void ExpectSameWeights(const ArrayRecord& a, const ArrayRecord& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].DebugString(), b.tensors[i].DebugString());
    EXPECT_TRUE(a.tensors[i].data() == b.tensors[i].data()) << a.tensors[i].name();
  }
}

std::vector<std::string> Names(const ArrayRecord& r) {
  std::vector<std::string> names;
  for (const Tensor& t : r.tensors) names.push_back(t.name());
  return names;
}

TrainOptions FastOptions() {
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 16;
  o.learning_rate = 0.05;
  o.momentum = 0.9;
  o.seed = 11;
  return o;
}

TEST(LocalModelTest, BuiltinParameterCounts) {
  // niid_cnn: 6*25+6 + 16*6*25+16 + 256*120+120 + 120*84+84 + 84*10+10.
  const std::pair<const char*, int64_t> kWant[] = {
      {"niid_cnn", 156 + 2416 + 30840 + 10164 + 850},
      {"mcmahan_cnn", 1663370},  // McMahan et al. 2017, section 3
      {"mlp", 199210},           // the paper's "2NN"
      // dp_cnn: 16*64+16 + 32*16*16+32 + 512*32+32 + 32*10+10.
      {"dp_cnn", 1040 + 8224 + 16416 + 330},
  };
  for (const auto& [arch, count] : kWant) {
    absl::StatusOr<std::unique_ptr<LocalModel>> m = LocalModel::CreateBuiltin(arch, 1);
    TESSERA_ASSERT_OK(m);
    EXPECT_EQ((*m)->num_parameters(), count) << arch;
    EXPECT_EQ((*m)->architecture(), arch);
    EXPECT_EQ((*m)->device(), "cpu");
  }
  EXPECT_EQ(44426, 156 + 2416 + 30840 + 10164 + 850);
}

TEST(LocalModelTest, UnknownArchitectureListsKnownOnes) {
  EXPECT_THAT(LocalModel::CreateBuiltin("resnet", 1),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       testing::AllOf(HasSubstr("resnet"), HasSubstr("niid_cnn"),
                                      HasSubstr("mcmahan_cnn"), HasSubstr("mlp"))));
  EXPECT_THAT(LocalModel::CreateBuiltin("mlp", 1, "tpu"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(LocalModelTest, WeightsAreNamedAndSeeded) {
  auto a = LocalModel::CreateBuiltin("niid_cnn", 5);
  auto b = LocalModel::CreateBuiltin("niid_cnn", 5);
  auto c = LocalModel::CreateBuiltin("niid_cnn", 6);
  TESSERA_ASSERT_OK(a);
  TESSERA_ASSERT_OK(b);
  TESSERA_ASSERT_OK(c);
  absl::StatusOr<ArrayRecord> wa = (*a)->GetWeights();
  absl::StatusOr<ArrayRecord> wb = (*b)->GetWeights();
  absl::StatusOr<ArrayRecord> wc = (*c)->GetWeights();
  TESSERA_ASSERT_OK(wa);
  EXPECT_THAT(Names(*wa), ElementsAre("conv1.weight", "conv1.bias", "conv2.weight",
                                      "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight",
                                      "fc2.bias", "fc3.weight", "fc3.bias"));
  EXPECT_EQ(wa->tensors[0].DebugString(), "conv1.weight float32[6,1,5,5]");
  ExpectSameWeights(*wa, *wb);
  EXPECT_NE(wa->tensors[0].data(), wc->tensors[0].data());
}

TEST(LocalModelTest, SetWeightsRoundTrip) {
  auto a = LocalModel::CreateBuiltin("mlp", 1);
  auto b = LocalModel::CreateBuiltin("mlp", 2);
  TESSERA_ASSERT_OK(a);
  TESSERA_ASSERT_OK(b);
  absl::StatusOr<ArrayRecord> wa = (*a)->GetWeights();
  TESSERA_ASSERT_OK(wa);
  std::reverse(wa->tensors.begin(), wa->tensors.end());  // order does not matter
  TESSERA_ASSERT_OK((*b)->SetWeights(*wa));
  std::reverse(wa->tensors.begin(), wa->tensors.end());
  absl::StatusOr<ArrayRecord> wb = (*b)->GetWeights();
  TESSERA_ASSERT_OK(wb);
  ExpectSameWeights(*wa, *wb);
}

TEST(LocalModelTest, SetWeightsMismatchNamesTheTensor) {
  auto m = LocalModel::CreateBuiltin("niid_cnn", 1);
  TESSERA_ASSERT_OK(m);
  const ArrayRecord good = *(*m)->GetWeights();

  ArrayRecord missing = good;
  missing.tensors.pop_back();
  EXPECT_THAT((*m)->SetWeights(missing),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fc3.bias")));

  ArrayRecord shape = good;
  shape.tensors[1] = *Tensor::Zeros("conv1.bias", DType::kFloat32, {7});
  EXPECT_THAT((*m)->SetWeights(shape),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       testing::AllOf(HasSubstr("conv1.bias"), HasSubstr("[7]"))));

  ArrayRecord dtype = good;
  dtype.tensors[1] = *Tensor::Zeros("conv1.bias", DType::kFloat64, {6});
  EXPECT_THAT((*m)->SetWeights(dtype),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       testing::AllOf(HasSubstr("conv1.bias"), HasSubstr("float64"))));

  ArrayRecord extra = good;
  extra.tensors.push_back(*Tensor::Zeros("fc4.weight", DType::kFloat32, {1}));
  EXPECT_THAT((*m)->SetWeights(extra),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fc4.weight")));
  // Failed calls changed nothing.
  ExpectSameWeights(*(*m)->GetWeights(), good);
}

TEST(LocalModelTest, TrainingLearnsSeparableData) {
  const Dataset train = SeparableImages(20, 1);
  const Dataset test = SeparableImages(10, 2);
  auto m = LocalModel::CreateBuiltin("niid_cnn", 3);
  TESSERA_ASSERT_OK(m);
  absl::StatusOr<EvalResult> before = (*m)->Evaluate(test);
  TESSERA_ASSERT_OK(before);
  std::vector<double> progress;
  TrainOptions options = FastOptions();
  options.epochs = 10;
  options.learning_rate = 0.01;
  options.on_progress = [&](double p) { progress.push_back(p); };
  absl::StatusOr<TrainResult> r = (*m)->Train(train, options);
  TESSERA_ASSERT_OK(r);
  EXPECT_EQ(r->num_examples, 200u);
  EXPECT_EQ(r->steps, 10u * 13u);  // ceil(200 / 16) per epoch
  EXPECT_EQ(r->examples_processed, 2000u);
  EXPECT_GT(r->seconds, 0);
  ASSERT_EQ(progress.size(), r->steps);
  EXPECT_DOUBLE_EQ(progress.back(), 1.0);
  absl::StatusOr<EvalResult> after = (*m)->Evaluate(test);
  TESSERA_ASSERT_OK(after);
  EXPECT_EQ(after->num_examples, 100u);
  EXPECT_LT(after->loss, before->loss / 2);
  EXPECT_GT(after->accuracy, 0.9);
  EXPECT_LT(r->train_loss, before->loss);
}

TEST(LocalModelTest, MaxStepsCapsTraining) {
  auto m = LocalModel::CreateBuiltin("mlp", 3);
  TESSERA_ASSERT_OK(m);
  TrainOptions options = FastOptions();
  options.max_steps = 3;
  absl::StatusOr<TrainResult> r = (*m)->Train(SeparableImages(10, 1), options);
  TESSERA_ASSERT_OK(r);
  EXPECT_EQ(r->steps, 3u);
  EXPECT_EQ(r->examples_processed, 48u);
  EXPECT_EQ(r->num_examples, 100u);
}

TEST(LocalModelTest, SameSeedTrainsIdentically) {
  const Dataset train = SeparableImages(5, 1);
  ArrayRecord results[2];
  for (ArrayRecord& out : results) {
    auto m = LocalModel::CreateBuiltin("niid_cnn", 9);
    TESSERA_ASSERT_OK(m);
    TESSERA_ASSERT_OK((*m)->Train(train, FastOptions()));
    out = *(*m)->GetWeights();
  }
  ExpectSameWeights(results[0], results[1]);
}

TEST(LocalModelTest, TrainRejectsBadInput) {
  auto m = LocalModel::CreateBuiltin("niid_cnn", 1);
  TESSERA_ASSERT_OK(m);
  EXPECT_THAT((*m)->Train(Dataset(), FastOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  TrainOptions zero = FastOptions();
  zero.batch_size = 0;
  EXPECT_THAT((*m)->Train(SeparableImages(1, 1), zero),
              StatusIs(absl::StatusCode::kInvalidArgument));
  Dataset tabular;
  tabular.example_shape = {4};
  tabular.features = {1, 2, 3, 4};
  tabular.labels = {0};
  tabular.num_classes = 2;
  EXPECT_THAT((*m)->Train(tabular, FastOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("784")));
  Dataset many_classes = SeparableImages(1, 1);
  many_classes.num_classes = 20;
  many_classes.labels[0] = 15;
  EXPECT_THAT((*m)->Evaluate(many_classes), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT((*m)->SaveTorchScript("/tmp/never.pt"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(DeviceTest, ResolveDevice) {
  EXPECT_THAT(ResolveDevice("cpu"), IsOkAndHolds("cpu"));
  absl::StatusOr<std::string> automatic = ResolveDevice("auto");
  TESSERA_ASSERT_OK(automatic);
  EXPECT_TRUE(*automatic == "cpu" || *automatic == "cuda:0") << *automatic;
  EXPECT_THAT(ResolveDevice("gpu"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResolveDevice("cuda:x"), StatusIs(absl::StatusCode::kInvalidArgument));
  if (*automatic == "cpu") {
    EXPECT_THAT(ResolveDevice("cuda"),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CUDA")));
  } else {
    EXPECT_THAT(ResolveDevice("cuda"), IsOkAndHolds("cuda:0"));
  }
  EXPECT_THAT(SetTorchThreads(-1), StatusIs(absl::StatusCode::kInvalidArgument));
  TESSERA_EXPECT_OK(SetTorchThreads(0));
  EXPECT_GE(TorchThreads(), 1);
}

TEST(LocalModelTorchScriptTest, TrainSaveReload) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir());
  const std::string base = (dir / "tiny.pt").string();
  TESSERA_ASSERT_OK(WriteTinyTorchScript(base));
  auto m = LocalModel::LoadTorchScriptFile(base);
  TESSERA_ASSERT_OK(m);
  EXPECT_EQ((*m)->architecture(), "torchscript");
  EXPECT_EQ((*m)->num_parameters(), 12 + 3 + 4);
  absl::StatusOr<ArrayRecord> initial = (*m)->GetWeights();
  TESSERA_ASSERT_OK(initial);
  EXPECT_THAT(Names(*initial), ElementsAre("weight", "bias", "bn.weight", "bn.running_mean",
                                           "bn.num_batches_tracked"));
  EXPECT_EQ(initial->tensors[4].DebugString(), "bn.num_batches_tracked int64[]");

  TrainOptions options = FastOptions();
  options.batch_size = 8;
  options.max_steps = 1;
  absl::StatusOr<TrainResult> r = (*m)->Train(TinyTabularDataset(), options);
  TESSERA_ASSERT_OK(r);
  EXPECT_EQ(r->steps, 1u);
  absl::StatusOr<ArrayRecord> trained = (*m)->GetWeights();
  TESSERA_ASSERT_OK(trained);
  EXPECT_EQ(trained->tensors[4].values<int64_t>()[0], 1);
  EXPECT_NE(trained->tensors[0].data(), initial->tensors[0].data());
  TESSERA_ASSERT_OK((*m)->Evaluate(TinyTabularDataset(), 7));
  // Evaluation ran in eval mode: the counter did not move.
  EXPECT_EQ((*(*m)->GetWeights()).tensors[4].values<int64_t>()[0], 1);

  const std::string out = (dir / "tiny_trained.pt").string();
  TESSERA_ASSERT_OK((*m)->SaveTorchScript(out));
  auto reloaded = LocalModel::LoadTorchScriptFile(out);
  TESSERA_ASSERT_OK(reloaded);
  ExpectSameWeights(*(*reloaded)->GetWeights(), *trained);

  // The same program from bytes, then given the trained weights.
  std::ifstream in(base, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  auto from_bytes = LocalModel::LoadTorchScriptBytes(bytes.str());
  TESSERA_ASSERT_OK(from_bytes);
  ExpectSameWeights(*(*from_bytes)->GetWeights(), *initial);
  TESSERA_ASSERT_OK((*from_bytes)->SetWeights(*trained));
  ExpectSameWeights(*(*from_bytes)->GetWeights(), *trained);

  ArrayRecord wrong_dtype = *trained;
  wrong_dtype.tensors[4] = *Tensor::Zeros("bn.num_batches_tracked", DType::kFloat32, {});
  EXPECT_THAT((*from_bytes)->SetWeights(wrong_dtype),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("bn.num_batches_tracked")));
}

TEST(LocalModelTorchScriptTest, LoadErrors) {
  EXPECT_THAT(LocalModel::LoadTorchScriptFile("/nonexistent/model.pt"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/model.pt")));
  EXPECT_THAT(LocalModel::LoadTorchScriptBytes("not a zip archive"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("TorchScript")));
}

}  // namespace
}  // namespace tessera

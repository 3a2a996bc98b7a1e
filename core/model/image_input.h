// File: image_input.h
// What the built-in image architectures ("niid_cnn", "mcmahan_cnn", "mlp", "dp_cnn") take as
// input, and how a Tessera client prepares IDX images for them (client/data/idx_reader.h).
// The one place these numbers are defined: the client normalizes with them, and the model
// card and `tessera model export` state them, so an exported model's users feed it what it
// was trained on.
#ifndef TESSERA_CORE_MODEL_IMAGE_INPUT_H_
#define TESSERA_CORE_MODEL_IMAGE_INPUT_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace tessera {

// Pixel bytes x in [0, 255] are scaled to [0, 1] as x / kPixelScale, then normalized with
// the Fashion-MNIST training-set pixel statistics (of the scaled pixels):
//   input = (x / 255 - kFashionMnistMean) / kFashionMnistStd
inline constexpr double kPixelScale = 255.0;
inline constexpr double kFashionMnistMean = 0.2860;
inline constexpr double kFashionMnistStd = 0.3530;

// Every built-in network takes a float32 [batch, 1, 28, 28] tensor (channels first, one
// grayscale channel, rows top to bottom) and returns [batch, 10] logits.
inline constexpr std::array<int64_t, 3> kBuiltinImageShape = {1, 28, 28};
inline constexpr int64_t kBuiltinNumClasses = 10;

// Fashion-MNIST's class names by label (Xiao et al. 2017, Table 1).
inline constexpr std::array<absl::string_view, 10> kFashionMnistLabelNames = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// "(x / 255 - 0.2860) / 0.3530", x a pixel byte.
inline std::string ImageNormalizationFormula() {
  return absl::StrFormat("(x / %g - %.4f) / %.4f", kPixelScale, kFashionMnistMean,
                         kFashionMnistStd);
}

// "0 T-shirt/top, 1 Trouser, ..., 9 Ankle boot".
inline std::string FashionMnistLabelsText() {
  std::string out;
  for (size_t i = 0; i < kFashionMnistLabelNames.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ", ", i, " ", kFashionMnistLabelNames[i]);
  }
  return out;
}

}  // namespace tessera

#endif  // TESSERA_CORE_MODEL_IMAGE_INPUT_H_

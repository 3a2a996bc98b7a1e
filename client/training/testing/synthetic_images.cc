#include "client/training/testing/synthetic_images.h"

#include <random>

namespace tessera {

Dataset SeparableImages(int per_class, uint64_t seed) {
  Dataset d;
  d.example_shape = {1, 28, 28};
  d.num_classes = 10;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  for (int i = 0; i < per_class * 10; ++i) {
    const int c = i % 10;
    const int r0 = (c / 4) * 9, c0 = (c % 4) * 7;
    for (int r = 0; r < 28; ++r) {
      for (int col = 0; col < 28; ++col) {
        const bool on = r >= r0 && r < r0 + 7 && col >= c0 && col < c0 + 7;
        d.features.push_back((on ? 2.0f : 0.0f) + noise(rng));
      }
    }
    d.labels.push_back(c);
  }
  return d;
}

}  // namespace tessera

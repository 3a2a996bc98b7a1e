// File: synthetic_images.h
// Test-only: a small image dataset that the built-in networks learn in a few steps.
#ifndef TESSERA_CLIENT_TRAINING_TESTING_SYNTHETIC_IMAGES_H_
#define TESSERA_CLIENT_TRAINING_TESTING_SYNTHETIC_IMAGES_H_

#include <cstdint>

#include "client/data/dataset.h"

namespace tessera {

// `per_class` 1x28x28 examples of each of 10 classes: class c lights a 7x7 patch at a
// class-specific position, plus Gaussian noise (stddev 0.3) drawn from `seed`. Linearly
// separable.
Dataset SeparableImages(int per_class, uint64_t seed);

}  // namespace tessera

#endif  // TESSERA_CLIENT_TRAINING_TESTING_SYNTHETIC_IMAGES_H_

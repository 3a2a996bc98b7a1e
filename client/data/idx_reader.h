// File: idx_reader.h
// Reads datasets in the IDX format of the MNIST family (MNIST, Fashion-MNIST, KMNIST):
// an images file (magic 0x00000803: unsigned bytes, 3 dimensions) and a labels file
// (magic 0x00000801: unsigned bytes, 1 dimension). Dimensions are big-endian uint32.
// Both gzip-compressed (.gz) and raw files are read, through zlib.
#ifndef TESSERA_CLIENT_DATA_IDX_READER_H_
#define TESSERA_CLIENT_DATA_IDX_READER_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/data/dataset.h"
#include "core/model/image_input.h"  // kFashionMnistMean, kFashionMnistStd, kPixelScale

namespace tessera {

// MNIST-family datasets have 10 classes; a larger label widens num_classes.
inline constexpr int64_t kIdxMinNumClasses = 10;

// Loads an images/labels pair. Pixel bytes x are scaled to [0, 1] and then normalized as
// (x / kPixelScale - mean) / stddev (the defaults: core/model/image_input.h, which the model
// card states). example_shape is {1, rows, cols} (channels first).
// `limit` > 0 keeps only the first `limit` examples.
// Errors: NOT_FOUND when a file cannot be opened; INVALID_ARGUMENT naming the file for a
// bad magic number, an unsupported element type, implausible dimensions, truncated data,
// or image and label counts that differ; INVALID_ARGUMENT for stddev <= 0.
absl::StatusOr<Dataset> LoadIdxDataset(const std::string& images_path,
                                       const std::string& labels_path, size_t limit = 0,
                                       double mean = kFashionMnistMean,
                                       double stddev = kFashionMnistStd);

// Loads split "train" (train-images-idx3-ubyte, train-labels-idx1-ubyte) or "test"
// (t10k-...) from `dir`, preferring the .gz files, with the Fashion-MNIST normalization.
// The Debian package dataset-fashion-mnist installs them in kFashionMnistDir.
// Errors: INVALID_ARGUMENT for another split name; NOT_FOUND naming the directory and the
// file names tried; otherwise as LoadIdxDataset.
absl::StatusOr<Dataset> LoadIdxSplit(const std::string& dir, absl::string_view split,
                                     size_t limit = 0);

inline constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

}  // namespace tessera

#endif  // TESSERA_CLIENT_DATA_IDX_READER_H_

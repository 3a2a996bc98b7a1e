// File: hf_layout.h
// The files of a Hugging Face model directory as transformers names them (config.json,
// model.safetensors, model.safetensors.index.json, model-00001-of-00003.safetensors) and the
// path and dtype helpers the checkpoint and adapter readers and writers share. Internal to
// client/lm/checkpoint.
#ifndef TESSERA_CLIENT_LM_CHECKPOINT_HF_LAYOUT_H_
#define TESSERA_CLIENT_LM_CHECKPOINT_HF_LAYOUT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "core/model/tensor.h"

namespace tessera::lm::internal {

inline constexpr char kConfigFile[] = "config.json";
inline constexpr char kSingleFile[] = "model.safetensors";
inline constexpr char kIndexFile[] = "model.safetensors.index.json";

// `dir`/`name` ("" or a trailing '/' in `dir` adds no second separator).
std::string JoinPath(const std::string& dir, absl::string_view name);

// Whether `path` is a regular file (following symlinks); false on any error.
bool IsFile(const std::string& path);

// The weight dtypes a checkpoint may store: float32, float16 and bfloat16.
bool IsSupportedWeightDType(DType dtype);

// transformers' name of shard i (0-based) of n: model-00001-of-00003.safetensors.
std::string ShardName(size_t i, size_t n);

// Whether `name` has that form (any shard count of 5 or more digits).
bool IsShardName(const std::string& name);

}  // namespace tessera::lm::internal

#endif  // TESSERA_CLIENT_LM_CHECKPOINT_HF_LAYOUT_H_

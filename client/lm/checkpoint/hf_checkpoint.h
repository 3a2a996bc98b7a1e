// File: hf_checkpoint.h
// A Hugging Face model directory as it is published: config.json, the weights in
// model.safetensors or in shards model-0000i-of-0000n.safetensors listed by
// model.safetensors.index.json, and the tokenizer files. Reading checks every tensor the
// architecture needs (ExpectedTensors) for presence, shape and dtype (F32, F16 or BF16, as
// stored: the transformer converts); writing produces the same layout.
#ifndef TESSERA_CLIENT_LM_CHECKPOINT_HF_CHECKPOINT_H_
#define TESSERA_CLIENT_LM_CHECKPOINT_HF_CHECKPOINT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/lm/checkpoint/model_config.h"
#include "core/model/tensor.h"

namespace tessera::lm {

struct HfCheckpoint {
  std::string dir;
  CausalLmConfig config;
  // Exactly the ExpectedTensors(config), in that order, with the stored dtype.
  ArrayRecord weights;
};

// Two kinds of stored tensor are dropped as transformers drops them: the per-layer
// "model.layers.N.self_attn.rotary_emb.inv_freq" buffers older transformers saved (they are
// recomputed from config.json), and "lm_head.weight" in a tied checkpoint (transformers ties
// it to the embedding and ignores the stored copy). With model.safetensors.index.json, every
// shard it names must exist and hold exactly the tensors the index assigns to it; shard names
// must be plain file names in `dir`. pytorch_model.bin checkpoints are not read.
// Errors: NOT_FOUND for a missing directory, config.json or weights file (naming it);
// INVALID_ARGUMENT naming the file and tensor for a missing tensor, an unexpected one, a
// wrong shape, an unsupported dtype, a truncated or corrupt safetensors file, or an index
// that names a shard that is absent; config errors as ParseCausalLmConfig.
absl::StatusOr<HfCheckpoint> ReadHfCheckpoint(const std::string& dir);

// A checkpoint of `config` at transformers' initialization (`_init_weights`): float32
// weights drawn from normal(0, 0.02) for every linear and embedding matrix (in
// ExpectedTensors order, from std::mt19937_64(seed)), ones for the norms, zero biases.
// For models trained from scratch (tessera-model pretrain) and benchmarks; `dir` names it.
// Errors: INVALID_ARGUMENT for a config ValidateCausalLmConfig refuses.
absl::StatusOr<HfCheckpoint> InitializedCheckpoint(const CausalLmConfig& config, uint64_t seed,
                                                   std::string dir);

// Only config.json (no weights): for tools that need the shapes, e.g. to size adapters.
absl::StatusOr<CausalLmConfig> ReadHfConfig(const std::string& dir);

// Writes config.json and the weights (which must match ExpectedTensors(config)); with
// max_shard_bytes > 0 and weights larger than it, as shards plus
// model.safetensors.index.json (transformers' layout: tensors in order, a new shard when the
// next tensor would pass the limit; {"metadata": {"total_size": N}, "weight_map": {...}};
// model-00001-of-00003.safetensors, ...), else one model.safetensors; every safetensors file
// carries the metadata {"format": "pt"}. Weight files of an earlier checkpoint in `dir` that
// the new one does not use (model.safetensors, the index, model-*-of-*.safetensors) are
// removed. Does not write tokenizer files. Errors: INVALID_ARGUMENT on an invalid config or a
// layout mismatch (naming the tensor); I/O errors.
absl::Status WriteHfCheckpoint(const std::string& dir, const CausalLmConfig& config,
                               const ArrayRecord& weights, uint64_t max_shard_bytes = 0);

// The checkpoint's identity: SHA-256 (hex) of the text `sha256sum` prints for the files
// that define the model, sorted by name (config.json, generation_config.json,
// model*.safetensors, model.safetensors.index.json, tokenizer.json, tokenizer.model,
// tokenizer_config.json, special_tokens_map.json; those present, following symlinks as the
// Hugging Face cache's snapshot folders need), sorted by bytes (LC_ALL=C), i.e.
//   cd DIR && sha256sum <those files, sorted> | sha256sum
// Errors: NOT_FOUND when the directory has no config.json.
absl::StatusOr<std::string> CheckpointSha256(const std::string& dir);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_CHECKPOINT_HF_CHECKPOINT_H_

#!/usr/bin/env bash
# Builds tessera-model alone against a CUDA-enabled LibTorch (e.g. a pip-installed torch)
# and measures local training on cuda:0 next to the CPU, for GPU machines that do not have
# the project's Debian packages. The full project's CUDA build is CMake's -DTESSERA_CUDA=ON
# with Torch_DIR pointing at such a LibTorch.
#   TORCH_DIR    torch package dir (default: from python3 -c 'import torch')
#   ABSL_PREFIX  folder with include/absl and lib/libabsl_*.a (default: /usr)
#   DATA_DIR     Fashion-MNIST IDX files (default: /usr/share/datasets/fashion-mnist)
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH=${TORCH_DIR:-$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')}
ABSL=${ABSL_PREFIX:-/usr}
DATA=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
OUT=${OUT_DIR:-build-cuda}
mkdir -p "$OUT/core/base" "$OUT/obj"
sed 's/@PROJECT_VERSION@/0.1.0/; s/@TESSERA_GIT_VERSION@/cuda-check/' core/base/version.h.in \
  > "$OUT/core/base/version.h"
SRCS=(tools/model/main.cc tools/model/model_commands.cc tools/model/bench_train.cc
      client/training/local_model.cc client/training/builtin_models.cc
      client/training/torch_convert.cc client/training/device.cc
      client/data/dataset.cc client/data/idx_reader.cc client/data/csv_reader.cc
      client/data/partition.cc core/model/tensor.cc core/model/safetensors.cc)
FLAGS=(-std=c++20 -O2 -DNDEBUG -I. -I"$OUT" -I"$ABSL/include" -I"$TORCH/include"
       -I"$TORCH/include/torch/csrc/api/include")
printf '%s\n' "${SRCS[@]}" | xargs -P "$(nproc)" -I{} sh -c \
  'o="$0/obj/$(echo {} | tr / _).o"; g++ "$@" -c {} -o "$o"' "$OUT" "${FLAGS[@]}"
ABSL_LIBS=$(ls "$ABSL"/lib/libabsl_*.a 2>/dev/null || ls "$ABSL"/lib/x86_64-linux-gnu/libabsl_*.a)
g++ -o "$OUT/tessera-model" "$OUT"/obj/*.o -L"$TORCH/lib" -Wl,-rpath,"$TORCH/lib" \
  -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed -ltorch -ltorch_cpu -lc10 \
  -Wl,--start-group $ABSL_LIBS -Wl,--end-group -lz -lpthread
echo "cuda_check: built $OUT/tessera-model"
# --device auto must pick the GPU when the linked LibTorch has CUDA and one is visible.
"$OUT/tessera-model" bench-train --architecture niid_cnn --batch-size 64 --seconds 2 \
  --device auto --data "$DATA"
for device in cuda:0 cpu; do
  "$OUT/tessera-model" bench-train --architecture niid_cnn --batch-size 64 --seconds 5 \
    --device "$device" --data "$DATA"
  "$OUT/tessera-model" bench-train --architecture mcmahan_cnn --batch-size 64 --seconds 5 \
    --device "$device" --data "$DATA"
done

# NOT BUILT IN CI: a documented variant of client.Dockerfile for NVIDIA GPUs (deploy/README.md,
# "CUDA client"). Debian's LibTorch is CPU-only, so this one builds tessera-client and
# tessera-model with -DTESSERA_CUDA=ON against a CUDA LibTorch downloaded from
# LIBTORCH_URL (a "cxx11 ABI, shared with deps" zip, which carries the CUDA runtime, cuBLAS
# and cuDNN). Everything else still comes from Debian 12 packages. CMake needs a CUDA toolkit
# to take a CUDA LibTorch, so the build stage adds Debian's nvidia-cuda-toolkit (CUDA 11.8,
# non-free); pick a cu118 LibTorch to match. At run time only the host's NVIDIA driver is
# needed, through the NVIDIA Container Toolkit (`docker run --gpus all`). Build from the
# repository root:
#   docker build -f deploy/docker/client-cuda.Dockerfile -t tessera-client-cuda:0.1.0 \
#     --build-arg LIBTORCH_URL=https://download.pytorch.org/libtorch/cu118/libtorch-cxx11-abi-shared-with-deps-2.1.2%2Bcu118.zip .
# BASE_IMAGE must stay a Debian 12 image (the package names below are bookworm's).

ARG BASE_IMAGE=debian:12

FROM ${BASE_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
ARG LIBTORCH_URL
RUN test -n "${LIBTORCH_URL}" || { echo "set --build-arg LIBTORCH_URL (deploy/README.md)"; exit 1; }
RUN sed -i 's/^Components: main$/Components: main contrib non-free non-free-firmware/' \
      /etc/apt/sources.list.d/debian.sources \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config git curl ca-certificates unzip \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      librocksdb-dev libabsl-dev libssl-dev zlib1g-dev \
      libgoogle-glog-dev libgflags-dev \
      libtomlplusplus-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev \
      libre2-dev libsentencepiece-dev libicu-dev \
      nvidia-cuda-toolkit \
 && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL -o /tmp/libtorch.zip "${LIBTORCH_URL}" \
 && unzip -q /tmp/libtorch.zip -d /opt \
 && rm /tmp/libtorch.zip
WORKDIR /src
# The sources (the .dockerignore beside this file drops local build trees); the build goes
# to /build, apart from anything the context holds.
COPY . .
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCHMARKS=OFF \
      -DTESSERA_CUDA=ON -DTorch_DIR=/opt/libtorch/share/cmake/Torch \
 && ninja -C /build tessera-client tessera-model tessera tessera_sentencepiece

FROM ${BASE_IMAGE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 libgoogle-glog0v6 libgrpc++1.51 libgrpc29 libprotobuf32 libssl3 \
      libtomlplusplus3 libyaml-cpp0.7 \
      libre2-9 libicu72 libsentencepiece0 libgomp1 dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/libtorch/lib /opt/libtorch/lib
RUN echo /opt/libtorch/lib > /etc/ld.so.conf.d/libtorch.conf && ldconfig
RUN groupadd --system --gid 10001 tessera \
 && useradd --system --uid 10001 --gid tessera --home-dir /var/lib/tessera \
      --shell /usr/sbin/nologin tessera \
 && install -d -m 0700 -o tessera -g tessera /var/lib/tessera \
 && install -d -m 0750 -o tessera -g tessera /etc/tessera /etc/tessera/pki
COPY --from=build /build/bin/tessera-client /build/bin/tessera-model \
     /build/bin/tessera /usr/local/bin/
# SentencePiece tokenizers: a module the programs load next to themselves (docs/llm.md).
COPY --from=build /build/bin/libtessera_sentencepiece.so /usr/local/bin/
# The NVIDIA Container Toolkit mounts the driver into containers that ask for it.
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER tessera:tessera
WORKDIR /var/lib/tessera
# --device auto picks cuda:0 when a GPU is visible; `tessera-model bench-train --device cuda:0`
# checks the GPU path (deploy/README.md).
CMD ["tessera-client", "--help"]

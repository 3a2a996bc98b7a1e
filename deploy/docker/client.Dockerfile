# The client image: tessera-client and tessera-model on Debian 12's CPU LibTorch, with the
# operator CLI `tessera` beside them (its `run create` starts tessera-model to write a built-in
# architecture's initial weights) and the Fashion-MNIST demo data of dataset-fashion-mnist
# in /usr/share/datasets/fashion-mnist. Build from the repository root:
#   docker build -f deploy/docker/client.Dockerfile -t tessera-client:0.1.0 .
# For a GPU see client-cuda.Dockerfile. Runs as uid 10001, the same as the coordinator image,
# so both read keys written by `tessera pki` into a shared volume.

FROM debian:12 AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config git \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libtorch-dev librocksdb-dev libabsl-dev libssl-dev zlib1g-dev \
      libgoogle-glog-dev libgflags-dev \
      libtomlplusplus-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev \
      libre2-dev libsentencepiece-dev libicu-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The sources (the .dockerignore beside this file drops local build trees); the build goes
# to /build, apart from anything the context holds.
COPY . .
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCHMARKS=OFF \
 && ninja -C /build tessera-client tessera-model tessera tessera_sentencepiece

FROM debian:12 AS runtime
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 libgoogle-glog0v6 libgrpc++1.51 libgrpc29 libprotobuf32 libssl3 \
      libtorch1.13 libopenblas0-pthread libtomlplusplus3 libyaml-cpp0.7 \
      libre2-9 libicu72 libsentencepiece0 dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 tessera \
 && useradd --system --uid 10001 --gid tessera --home-dir /var/lib/tessera \
      --shell /usr/sbin/nologin tessera \
 && install -d -m 0700 -o tessera -g tessera /var/lib/tessera \
 && install -d -m 0750 -o tessera -g tessera /etc/tessera /etc/tessera/pki
COPY --from=build /build/bin/tessera-client /build/bin/tessera-model \
     /build/bin/tessera /usr/local/bin/
# SentencePiece tokenizers: a module the programs load next to themselves (docs/llm.md).
COPY --from=build /build/bin/libtessera_sentencepiece.so /usr/local/bin/
USER tessera:tessera
WORKDIR /var/lib/tessera
# A client needs at least --name, its certificate and --coordinator (deploy/README.md).
CMD ["tessera-client", "--help"]

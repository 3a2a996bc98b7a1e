# The coordinator image: tessera-coordinator and the operator CLI `tessera` (runs, clients,
# `tessera pki`), built and run on Debian 12 packages. Build from the repository root:
#   docker build -f deploy/docker/coordinator.Dockerfile -t tessera-coordinator:0.1.0 .
# Stage `build` has the -dev packages of scripts/install_deps.sh (LibTorch too: CMake finds it
# for the whole project, though neither program links it); stage `runtime` has the two
# binaries, the shared libraries they link and curl (for healthchecks), and runs as uid 10001.
# `tessera run create` with a built-in architecture needs tessera-model: run it from the
# client image (deploy/README.md, "Compose").

FROM debian:12 AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config git \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libtorch-dev librocksdb-dev libabsl-dev libssl-dev zlib1g-dev \
      libgoogle-glog-dev libgflags-dev \
      libtomlplusplus-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The sources (the .dockerignore beside this file drops local build trees); the build goes
# to /build, apart from anything the context holds.
COPY . .
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCHMARKS=OFF \
 && ninja -C /build tessera-coordinator tessera

FROM debian:12 AS runtime
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 libcpp-httplib0.11 libgoogle-glog0v6 libgrpc++1.51 libgrpc29 \
      libprotobuf32 librocksdb7.8 libssl3 libtomlplusplus3 libyaml-cpp0.7 curl \
 && rm -rf /var/lib/apt/lists/*
# The state and PKI folders exist, owned by tessera, so that a fresh named volume mounted on
# them takes that owner (Docker copies a mount point's owner into an empty volume).
RUN groupadd --system --gid 10001 tessera \
 && useradd --system --uid 10001 --gid tessera --home-dir /var/lib/tessera \
      --shell /usr/sbin/nologin tessera \
 && install -d -m 0700 -o tessera -g tessera /var/lib/tessera /var/lib/tessera/coordinator \
 && install -d -m 0750 -o tessera -g tessera /etc/tessera /etc/tessera/pki
COPY --from=build /build/bin/tessera-coordinator /build/bin/tessera /usr/local/bin/
USER tessera:tessera
WORKDIR /var/lib/tessera
# 7800: gRPC (mTLS), for partners and operators. 9464: plain-HTTP /metrics and /healthz, for
# the monitoring network only.
EXPOSE 7800 9464
VOLUME ["/var/lib/tessera/coordinator"]
# The PKI as `tessera pki init` + `tessera pki issue --role coordinator --name coordinator`
# write it, mounted at /etc/tessera/pki.
CMD ["tessera-coordinator", "--listen", "0.0.0.0:7800", \
     "--state-dir", "/var/lib/tessera/coordinator", \
     "--ca", "/etc/tessera/pki/ca.pem", "--crl", "/etc/tessera/pki/crl.pem", \
     "--cert", "/etc/tessera/pki/coordinator.pem", "--key", "/etc/tessera/pki/coordinator.key", \
     "--metrics-address", "0.0.0.0:9464", "--log-format", "json"]

#!/usr/bin/env bash
# Installs the exact Debian 12 packages Tessera builds, tests and runs with.
# Idempotent; needs root (or sudo). Non-interactive.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libtorch-dev libopenblas0-pthread
  librocksdb-dev libabsl-dev libssl-dev openssl zlib1g-dev
  libgoogle-glog-dev libgflags-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenmpi-dev openmpi-bin
  clang-14 libclang-rt-14-dev
  libre2-dev libsentencepiece-dev libicu-dev
  libtomlplusplus-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
  dataset-fashion-mnist gnuplot-nox systemd chromium
  python3 python3-numpy python3-torch python3-regex python3-sentencepiece python3-jinja2
  fortunes fortunes-min
  iproute2 docker-compose
)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q "${missing[@]}"

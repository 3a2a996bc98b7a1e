# The simulator image for MPI jobs (deploy/mpi/tessera-sim-mpijob.yaml): tessera-sim built with
# Open MPI, mpirun, the Fashion-MNIST data of dataset-fashion-mnist, and an sshd that runs as
# the unprivileged user mpiuser, as the Kubeflow MPI Operator expects (its launcher starts the
# ranks over SSH with keys it mounts at /home/mpiuser/.ssh). Build from the repository root:
#   docker build -f deploy/docker/sim-mpi.Dockerfile -t tessera-sim-mpi:0.1.0 .

FROM debian:12 AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config git \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libtorch-dev librocksdb-dev libabsl-dev libssl-dev zlib1g-dev \
      libgoogle-glog-dev libgflags-dev libopenmpi-dev \
      libtomlplusplus-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev \
      libre2-dev libsentencepiece-dev libicu-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCHMARKS=OFF \
 && ninja -C /build tessera-sim

FROM debian:12 AS runtime
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 libgoogle-glog0v6 libgrpc++1.51 libgrpc29 libprotobuf32 libssl3 \
      libtorch1.13 libopenblas0-pthread libtomlplusplus3 libyaml-cpp0.7 librocksdb7.8 \
      libcpp-httplib0.11 libre2-9 libicu72 libsentencepiece0 dataset-fashion-mnist gnuplot-nox \
      openmpi-bin libopenmpi3 openssh-server openssh-client \
 && rm -rf /var/lib/apt/lists/*
# SSH between the pods without host-key prompts (the operator's keys are mounted read-only,
# so no known_hosts file and no permission checks), on port 2222 so sshd needs no root.
RUN sed -i 's/^#\?\s*StrictHostKeyChecking .*/    StrictHostKeyChecking no/' /etc/ssh/ssh_config \
 && printf '    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n    Port 2222\n' \
      >> /etc/ssh/ssh_config \
 && useradd --create-home --uid 1000 mpiuser \
 && printf 'Port 2222\nPidFile /home/mpiuser/sshd.pid\nHostKey /home/mpiuser/.ssh/id_rsa\nStrictModes no\nPermitUserEnvironment yes\n' \
      > /home/mpiuser/.sshd_config \
 && install -d -o mpiuser -g mpiuser /out
COPY --from=build /build/bin/tessera-sim /usr/local/bin/
USER mpiuser
WORKDIR /home/mpiuser
CMD ["tessera-sim", "--help"]

// RankLink over the MPI C API (Open MPI), and the launch detection. The one file of the
// simulator that includes mpi.h; CMake defines TESSERA_HAVE_MPI for it when it finds MPI.
#include <algorithm>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tools/sim/rank_link.h"

#ifdef TESSERA_HAVE_MPI
// The C API only: without these, mpi.h from C++ pulls in the removed C++ bindings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace tessera::sim {
namespace {

// The world size an MPI launcher put in the environment (0: none).
int EnvInt(const char* name) {
  const char* v = std::getenv(name);
  int n = 0;
  return v != nullptr && absl::SimpleAtoi(v, &n) ? n : 0;
}

#ifdef TESSERA_HAVE_MPI
constexpr int kTag = 20;
constexpr absl::Duration kMaxPoll = absl::Microseconds(500);

class MpiLink : public RankLink {
 public:
  MpiLink() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiLink() override {
    while (!posted_.empty()) {
      MPI_Wait(&posted_.front().request, MPI_STATUS_IGNORE);
      posted_.pop_front();
    }
    MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void Post(int to, std::string bytes) override {
    Reap();
    posted_.push_back(Posted{std::move(bytes), MPI_REQUEST_NULL});
    Posted& p = posted_.back();
    // RankMessages are at most INT_MAX bytes (kMaxRankMessageBytes, checked by the encoders).
    MPI_Isend(p.bytes.data(), static_cast<int>(p.bytes.size()), MPI_BYTE, to, kTag,
              MPI_COMM_WORLD, &p.request);
  }
  std::optional<std::pair<int, std::string>> TryReceive(int from) override {
    Reap();
    int arrived = 0;
    MPI_Status status;
    MPI_Iprobe(from == kAnyRank ? MPI_ANY_SOURCE : from, kTag, MPI_COMM_WORLD, &arrived, &status);
    if (!arrived) return std::nullopt;
    return Take(status);
  }
  // Polls instead of MPI_Probe, which spins a core while it waits (Open MPI busy-polls): an
  // idle rank, waiting for the next round, would take CPU from rank 0's coordinator and from
  // training ranks on shared cores. Waiting costs at most kMaxPoll of latency per message.
  std::pair<int, std::string> Receive(int from) override {
    absl::Duration pause = absl::Microseconds(20);
    while (true) {
      std::optional<std::pair<int, std::string>> m = TryReceive(from);
      if (m.has_value()) return *std::move(m);
      absl::SleepFor(pause);
      pause = std::min(2 * pause, kMaxPoll);
    }
  }
  std::string Broadcast(std::string value) override {
    unsigned long long n = value.size();
    MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    value.resize(n);
    MPI_Bcast(value.data(), static_cast<int>(n), MPI_BYTE, 0, MPI_COMM_WORLD);
    return value;
  }
  [[noreturn]] void Abort(absl::string_view message) override {
    std::cerr << message << std::endl;
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);  // MPI_Abort does not return; this is for the compiler
  }

 private:
  struct Posted {
    std::string bytes;
    MPI_Request request;
  };
  // Frees the buffers of sends that have completed, oldest first.
  void Reap() {
    while (!posted_.empty()) {
      int done = 0;
      MPI_Test(&posted_.front().request, &done, MPI_STATUS_IGNORE);
      if (!done) return;
      posted_.pop_front();
    }
  }
  std::pair<int, std::string> Take(const MPI_Status& probed) {
    int count = 0;
    MPI_Get_count(&probed, MPI_BYTE, &count);
    std::string bytes(static_cast<size_t>(count), '\0');
    MPI_Recv(bytes.data(), count, MPI_BYTE, probed.MPI_SOURCE, kTag, MPI_COMM_WORLD,
             MPI_STATUS_IGNORE);
    return {probed.MPI_SOURCE, std::move(bytes)};
  }

  int rank_ = 0;
  int size_ = 1;
  std::deque<Posted> posted_;  // a deque: its elements never move while MPI holds them
};
#endif

}  // namespace

bool LaunchedAsSeveralRanks() {
  return EnvInt("OMPI_COMM_WORLD_SIZE") > 1 || EnvInt("PMI_SIZE") > 1 ||
         (std::getenv("PMIX_RANK") != nullptr && EnvInt("SLURM_STEP_NUM_TASKS") > 1);
}

bool BuiltWithMpi() {
#ifdef TESSERA_HAVE_MPI
  return true;
#else
  return false;
#endif
}

std::unique_ptr<RankLink> JoinRanks(int* argc, char*** argv) {
#ifdef TESSERA_HAVE_MPI
  if (!LaunchedAsSeveralRanks()) return nullptr;
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
  if (provided < MPI_THREAD_SERIALIZED) {
    std::cerr << "tessera-sim: error: this MPI library offers thread level " << provided
              << ", below MPI_THREAD_SERIALIZED, which the simulator's rank 0 needs (its "
                 "dispatcher thread and its main thread take turns)" << std::endl;
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return std::make_unique<MpiLink>();
#else
  (void)argc;
  (void)argv;
  return nullptr;
#endif
}

}  // namespace tessera::sim

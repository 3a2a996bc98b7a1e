// File: rank_link.h
// The byte pipe between tessera-sim's ranks when it runs under mpirun or srun (docs/
// simulation.md, "Across machines with Open MPI"). The simulator speaks rank_messages.h over
// it; the one implementation is MPI's (mpi_link.cc, built when CMake finds MPI), so the rest
// of the simulator compiles without mpi.h. Messages between two ranks arrive in the order they
// were posted. A failure of the transport itself ends the whole job (MPI's default error
// handler), so no call here returns one.
//
// Thread safety: one thread at a time (MPI_THREAD_SERIALIZED). On rank 0 the fleet's
// dispatcher thread owns the link while the fleet runs; the main thread uses it before and
// after.
#ifndef TESSERA_TOOLS_SIM_RANK_LINK_H_
#define TESSERA_TOOLS_SIM_RANK_LINK_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace tessera::sim {

class RankLink {
 public:
  static constexpr int kAnyRank = -1;

  virtual ~RankLink() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Queues `bytes` for rank `to` and returns at once; the link keeps them until sent.
  virtual void Post(int to, std::string bytes) = 0;
  // The next message from `from` (kAnyRank: from any), with its sender, if one has arrived.
  virtual std::optional<std::pair<int, std::string>> TryReceive(int from) = 0;
  // Blocks for the next message from `from` (kAnyRank: from any), with its sender.
  virtual std::pair<int, std::string> Receive(int from) = 0;
  // Rank 0's `value`, on every rank (every rank must call it).
  virtual std::string Broadcast(std::string value) = 0;
  // Ends every rank of the job, exit status 1, after printing `message` on stderr.
  [[noreturn]] virtual void Abort(absl::string_view message) = 0;
};

// True when this process was started by mpirun/mpiexec (Open MPI, MPICH) or by srun with
// PMI/PMIx as one of several ranks: their environment names a world size above 1.
bool LaunchedAsSeveralRanks();

// Whether this binary was built with MPI (CMake found it).
bool BuiltWithMpi();

// Joins the MPI job when LaunchedAsSeveralRanks() (MPI_Init_thread; the link's destructor
// finalizes after its posted messages are sent); nullptr otherwise and in a build without MPI.
std::unique_ptr<RankLink> JoinRanks(int* argc, char*** argv);

}  // namespace tessera::sim

#endif  // TESSERA_TOOLS_SIM_RANK_LINK_H_

// File: federation_support.h
// What the benchmarks that drive a real tessera-coordinator process share: a model of a given
// size, a FedAvg run that selects every client, waiting for it to end, and reading the
// coordinator's /proc entries.
#ifndef TESSERA_TOOLS_BENCH_FEDERATION_SUPPORT_H_
#define TESSERA_TOOLS_BENCH_FEDERATION_SUPPORT_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "core/model/tensor.h"
#include "tessera/wire/v1/control.grpc.pb.h"
#include "tessera/wire/v1/fleet.grpc.pb.h"

namespace tessera::bench {

// Four float32 tensors "layer0.weight".."layer3.weight" of params/4 values each.
ArrayRecord BenchModel(int64_t params);

// Creates and starts a run of `rounds` rounds that selects `clients` clients (and waits up to
// 300 s for them), with evaluation off; secure aggregation when `secure`. Returns the run id,
// or "" after printing the error.
std::string CreateBenchRun(wire::v1::Control::Stub& control, const ArrayRecord& model,
                           uint32_t clients, uint32_t rounds, bool secure = false);

// Fleet.PushUpdate of `update` as the result of `task` (one example), as session `session`;
// `digest` is DigestArrayRecord(update) when already known.
grpc::Status PushBenchUpdate(wire::v1::Fleet::Stub& stub, const std::string& session,
                             const wire::v1::Task& task, const ArrayRecord& update,
                             std::optional<std::string> digest = std::nullopt);

// Polls the run until it completes or fails, or `seconds` pass.
wire::v1::RunStatus AwaitRunEnd(wire::v1::Control::Stub& control, const std::string& run,
                                double seconds);

// A "Name:   123 kB" field of /proc/PID/status (VmRSS, VmHWM, Threads), in its unit
// (kB for sizes); 0 if absent.
uint64_t ProcStatusField(pid_t pid, const std::string& name);

// VmHWM (peak resident set) in bytes.
uint64_t PeakRssBytes(pid_t pid);

// CPU seconds the process has used so far (/proc/PID/stat utime and stime); {0, 0} if gone.
struct CpuSeconds {
  double user = 0;
  double system = 0;
};
CpuSeconds ProcessCpuSeconds(pid_t pid);

// Entries of /proc/PID/fd: the process's open file descriptors.
uint64_t OpenFileCount(pid_t pid);

}  // namespace tessera::bench

#endif  // TESSERA_TOOLS_BENCH_FEDERATION_SUPPORT_H_

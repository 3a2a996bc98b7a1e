// File: virtual_fleet_internal.h
// Internal to tools/sim: VirtualFleet's per-client records and its work items, shared by
// virtual_fleet.cc (scheduling and training) and virtual_fleet_submit.cc (handing results
// to the coordinator in dispatch order).
#ifndef TESSERA_TOOLS_SIM_VIRTUAL_FLEET_INTERNAL_H_
#define TESSERA_TOOLS_SIM_VIRTUAL_FLEET_INTERNAL_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tools/sim/virtual_fleet.h"

namespace tessera::sim {

struct VirtualFleet::Client {
  std::string name;
  std::vector<size_t> indices;  // into the dataset (language models: its JSONL records)
  uint64_t size = 0;             // training examples (indices.size(), or after tokenization)
  std::string text_path;         // language models: this client's JSONL
  double speed = 1;
  double noise_std = 0;  // feature-noise partition
  std::vector<std::pair<double, double>> online;  // trace intervals, virtual seconds
  std::string session;
  uint64_t token = 0;
  bool connected = false;
  ClientState state;  // SCAFFOLD's variate; touched by one task at a time
};

struct VirtualFleet::Job {
  size_t client = 0;
  wire::v1::Task task;
  std::shared_ptr<Batch> batch;
  size_t seq = 0;
};

struct VirtualFleet::Result {
  size_t client = 0;
  wire::v1::Task task;
  bool abandon = false;
  bool straggler = false;
  bool dropout = false;
  bool secagg = false;  // sent by its own protocol thread
  std::string reason;
  double virtual_seconds = 0;
  std::shared_ptr<PreparedUpdate> update;  // null: none
  // The update's values reached the coordinator in a rank's partial sum (update->update is
  // empty); `update_bytes` is what it weighed.
  bool folded = false;
  uint64_t update_bytes = 0;
};

struct VirtualFleet::Batch {
  uint32_t round = 0;
  uint32_t attempt = 0;
  size_t expected = 0;  // selected
  size_t assigned = 0;  // tasks delivered
  size_t next = 0;      // next to hand to the coordinator
  std::map<size_t, Result> ready;
  RoundTiming timing;
  bool missing = false;  // a selected client never reported
  double slowest = 0;
};

}  // namespace tessera::sim

#endif  // TESSERA_TOOLS_SIM_VIRTUAL_FLEET_INTERNAL_H_

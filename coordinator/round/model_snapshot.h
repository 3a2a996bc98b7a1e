// File: model_snapshot.h
// A global model as the round loop hands it around: immutable once made, shared by the
// tasks that stream it, the run's state and the strategy that makes the next one.
#ifndef TESSERA_COORDINATOR_ROUND_MODEL_SNAPSHOT_H_
#define TESSERA_COORDINATOR_ROUND_MODEL_SNAPSHOT_H_

#include <cstdint>
#include <string>

#include "core/model/tensor.h"

namespace tessera::coordinator {

// A global model that stays immutable while tasks stream it.
struct ModelSnapshot {
  uint32_t round = 0;
  ArrayRecord weights;
  std::string digest;  // DigestArrayRecord(weights)
  // What the strategy keeps across rounds (server optimizer moments); stored with the
  // model, never sent to clients.
  ArrayRecord server_state;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_MODEL_SNAPSHOT_H_

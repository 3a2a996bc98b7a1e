#include "tools/sim/virtual_fleet.h"

#include <algorithm>

#include <glog/logging.h>

#include "client/runtime/grpc_transport.h"
#include "tools/sim/in_process_transport.h"
#include "tools/sim/virtual_fleet_internal.h"

namespace tessera::sim {

std::unique_ptr<FleetTransport> VirtualFleet::TransportFor(const Client& c) {
  if (grpc_ == nullptr) return std::make_unique<InProcessTransport>(runs_, c.name);
  return std::make_unique<GrpcFleetTransport>(grpc_, [session = c.session] { return session; });
}

void VirtualFleet::Settle(const std::shared_ptr<Batch>& batch, size_t seq, Result r) {
  absl::MutexLock l(&mu_);
  RoundTiming& t = batch->timing;
  if (r.update != nullptr) {
    t.train_seconds += r.update->train.seconds;
    t.examples_processed += r.update->train.examples_processed;
    t.steps += r.update->train.steps;
  }
  t.stragglers += r.straggler ? 1 : 0;
  t.dropouts += r.dropout ? 1 : 0;
  // A client that vanishes keeps the coordinator waiting until the deadline.
  if (r.abandon) batch->missing = true;
  batch->slowest = std::max(batch->slowest, r.virtual_seconds);
  batch->ready.emplace(seq, std::move(r));
  max_pending_ = std::max(max_pending_, batch->ready.size());
}

void VirtualFleet::Submitter() {
  while (true) {
    std::shared_ptr<Batch> batch;
    Result r;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (stopping_) return true;
        if (submit_order_.empty()) return false;
        const Batch& b = *submit_order_.front();
        return b.ready.count(b.next) > 0 || (submit_order_.size() > 1 && b.next >= b.assigned);
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      batch = submit_order_.front();
      auto it = batch->ready.find(batch->next);
      if (it == batch->ready.end()) {  // an older attempt with nothing left to hand in
        submit_order_.pop_front();
        continue;
      }
      r = std::move(it->second);
      batch->ready.erase(it);
      ++batch->next;
    }
    const Client& c = *clients_[r.client];
    absl::Status s;
    if (r.abandon) {
      s = runs_->AbandonTask(r.task.task_id(), c.name, r.reason);
      if (r.secagg) {  // the protocol notices the loss when the client's stream is gone
        registry_->Detach(c.name, c.token);
        absl::MutexLock l(&mu_);
        clients_[r.client]->connected = false;
      }
    } else if (r.folded) {
      s = runs_->SubmitFoldedUpdate(r.task.task_id(), c.name, r.update->weight,
                                    r.update->metrics, r.update_bytes);
      if (!s.ok()) {  // its values are already in the round: the run cannot go on as is
        absl::MutexLock l(&mu_);
        if (error_.ok()) error_ = s;
      }
    } else if (!r.secagg) {
      s = TransportFor(c)->PushUpdate(r.task, r.update->weight, r.update->metrics,
                                      r.update->update);
    }
    if (!s.ok()) VLOG(1) << c.name << ": " << s;
  }
}

RoundTiming VirtualFleet::FinishRound(uint32_t round) {
  std::vector<std::thread> finished;  // the round's protocols have all ended
  {
    absl::MutexLock l(&mu_);
    finished.swap(secagg_threads_);
  }
  for (std::thread& t : finished) t.join();
  absl::MutexLock l(&mu_);
  auto it = batches_.find(round);
  if (it == batches_.end()) return {};
  RoundTiming t = it->second->timing;
  t.virtual_seconds = it->second->missing ? deadline_ : it->second->slowest;
  return t;
}

absl::Status VirtualFleet::error() {
  absl::MutexLock l(&mu_);
  return error_;
}

}  // namespace tessera::sim

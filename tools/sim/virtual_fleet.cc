#include "tools/sim/virtual_fleet.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include <glog/logging.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/runtime/site_ledger.h"
#include "core/base/status_macros.h"
#include "core/config/privacy_budget.h"
#include "privacy/secagg/identity.h"
#include "tools/sim/rank_messages.h"
#include "tools/sim/virtual_fleet_internal.h"

namespace tessera::sim {
namespace {

// A deterministic stream per (seed, a, b, c): splitmix64 over the mixed words.
uint64_t Mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t x = seed ^ (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^
               (c * 0x165667B19E3779F9ull);
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A uniform draw in [0, 1) from a Mix() hash (no 312-word Mersenne Twister per client).
double UnitInterval(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// Jobs per worker among which the largest is trained next.
constexpr size_t kPickWindow = 4;

}  // namespace

std::string VirtualClientName(size_t i) { return absl::StrFormat("client-%05d", i); }

VirtualFleet::VirtualFleet(const SimulationConfig& config, const PartitionSpec& partition,
                           uint64_t seed, double deadline, const Dataset* train, Partition parts,
                           coordinator::RunManager* runs, coordinator::ClientRegistry* registry)
    : config_(config), seed_(seed), deadline_(deadline), train_(train), runs_(runs),
      registry_(registry) {
  std::mt19937_64 rng(Mix(seed, 0x5EED, 0, 0));
  std::normal_distribution<double> normal(0, 1);
  for (size_t i = 0; i < parts.size(); ++i) {
    auto c = std::make_unique<Client>();
    c->name = VirtualClientName(i);
    c->indices = std::move(parts[i]);
    c->size = c->indices.size();
    // Log-normal speeds with median 1.
    c->speed = config.speed_sigma > 0 ? std::exp(config.speed_sigma * normal(rng)) : 1.0;
    if (partition.kind == PartitionSpec::kFeatureNoise) {
      c->noise_std = FeatureNoiseStd(partition.sigma, i, parts.size());
    }
    clients_.push_back(std::move(c));
  }
}

VirtualFleet::~VirtualFleet() { Stop(); }

void VirtualFleet::Stop() {
  std::vector<std::thread> secagg;
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    secagg.swap(secagg_threads_);
  }
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  if (submitter_.joinable()) submitter_.join();
  if (dispatcher_.joinable()) dispatcher_.join();
  for (std::thread& t : secagg) t.join();
}

void VirtualFleet::UseText(std::string base_checkpoint, const std::vector<std::string>& paths,
                           const std::vector<uint64_t>& train_examples) {
  base_checkpoint_ = std::move(base_checkpoint);
  for (size_t i = 0; i < clients_.size() && i < paths.size(); ++i) {
    clients_[i]->text_path = paths[i];
    clients_[i]->size = i < train_examples.size() ? train_examples[i] : 0;
  }
}

absl::Status VirtualFleet::Start() {
  if (!config_.availability_trace.empty()) {
    std::ifstream in(config_.availability_trace);
    if (!in) {
      return absl::NotFoundError(absl::StrCat("simulation.availability_trace: cannot open ",
                                              config_.availability_trace));
    }
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.empty() || line[0] == '#' || line.rfind("client", 0) == 0) continue;
      std::vector<std::string> f = absl::StrSplit(line, ',');
      size_t client = 0;
      double start = 0, end = 0;
      if (f.size() != 3 || !absl::SimpleAtoi(f[0], &client) ||
          !absl::SimpleAtod(f[1], &start) || !absl::SimpleAtod(f[2], &end) ||
          client >= clients_.size() || !(start <= end)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "simulation.availability_trace: line ", n, " is not \"client,start,end\" with a "
            "client below ", clients_.size(), " and start <= end: \"", line, "\""));
      }
      clients_[client]->online.emplace_back(start, end);
    }
  }
  for (auto& c : clients_) {
    TESSERA_ASSIGN_OR_RETURN(c->session, registry_->Register(c->name, config_.device, "sim"));
  }
  const unsigned threads =
      config_.threads > 0 ? config_.threads : std::max(1u, std::thread::hardware_concurrency());
  num_workers_ = threads;
  for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { Worker(); });
  submitter_ = std::thread([this] { Submitter(); });
  if (link_ != nullptr && link_->size() > 1) dispatcher_ = std::thread([this] { Dispatcher(); });
  return absl::OkStatus();
}

size_t VirtualFleet::SetOnline(uint32_t round, double now) {
  size_t online = 0;
  for (size_t i = 0; i < clients_.size(); ++i) {
    Client& c = *clients_[i];
    bool up;
    if (!config_.availability_trace.empty()) {
      up = std::any_of(c.online.begin(), c.online.end(),
                       [now](const auto& w) { return now >= w.first && now < w.second; });
    } else {
      up = config_.availability >= 1 ||
           UnitInterval(Mix(seed_, round, 0xA7A1, i)) < config_.availability;
    }
    bool connected;
    {
      absl::MutexLock l(&mu_);
      connected = c.connected;
    }
    if (up && !connected) {
      absl::StatusOr<uint64_t> token =
          registry_->Attach(c.session, [this, i](const wire::v1::Task& t) { return Deliver(i, t); });
      absl::MutexLock l(&mu_);
      connected = c.connected = token.ok();
      if (connected) c.token = *token;
    } else if (!up && connected) {
      registry_->Detach(c.name, c.token);
      absl::MutexLock l(&mu_);
      c.connected = false;
      connected = false;
    }
    online += connected ? 1 : 0;
  }
  return online;
}

void VirtualFleet::OnStatus(const wire::v1::RunStatus& status) {
  if (status.rounds().empty()) return;
  const wire::v1::RoundSummary& now = *status.rounds().rbegin();
  if (now.state() != wire::v1::ROUND_TRAINING || now.selected() == 0) return;
  absl::MutexLock l(&mu_);
  if (batch_ != nullptr && batch_->round == now.round() && batch_->attempt == now.attempt()) {
    return;
  }
  batch_ = std::make_shared<Batch>();
  batch_->round = now.round();
  batch_->attempt = now.attempt();
  batch_->expected = now.selected();
  batches_[now.round()] = batch_;
  submit_order_.push_back(batch_);
}

bool VirtualFleet::Deliver(size_t client, const wire::v1::Task& task) {
  if (task.type() == wire::v1::PING) return true;
  absl::MutexLock l(&mu_);
  if (stopping_ || batch_ == nullptr || task.type() != wire::v1::TRAIN) {
    LOG(WARNING) << "simulator: unexpected task for " << clients_[client]->name;
    return false;
  }
  Job job{client, task, batch_, batch_->assigned++};
  if (link_ != nullptr && !any_rank_ && ShardOf(client, link_->size()) != 0) {
    remote_queue_.push_back(std::move(job));
  } else {
    queue_.push_back(std::move(job));
  }
  return true;
}

VirtualFleet::Result VirtualFleet::Plan(const Job& job) {
  const Client& c = *clients_[job.client];
  const wire::v1::TrainConfig& t = job.task.train();
  Result r;
  r.client = job.client;
  r.task = job.task;
  r.secagg = job.task.has_secagg();
  // Local work as LocalModel::Train does it: epochs over the data, capped at max_steps.
  const uint64_t n = c.size;
  const uint64_t bs = std::max<uint32_t>(1, t.batch_size());
  const uint64_t per_epoch = (n + bs - 1) / bs;
  uint64_t steps = per_epoch * t.local_epochs();
  if (t.max_steps() > 0) steps = std::min<uint64_t>(steps, t.max_steps());
  const uint64_t full = per_epoch > 0 ? steps / per_epoch : 0;
  const uint64_t examples = full * n + std::min(n, (steps - full * per_epoch) * bs);
  const double link = static_cast<double>(job.task.model_bytes()) * 8.0 /
                      (config_.bandwidth_mbps * 1e6);
  const double duration =
      2 * link + static_cast<double>(examples) / (config_.examples_per_second * c.speed);
  std::mt19937_64 rng(Mix(seed_, job.task.round(), job.batch->attempt, job.client));
  std::uniform_real_distribution<double> u(0, 1);
  const double drop = u(rng), when = u(rng);
  if (n == 0) {  // a partition may leave a client without data (e.g. min_size = 0)
    r.abandon = true;
    r.reason = "holds no training examples";
  } else if (drop < config_.dropout) {
    r.abandon = r.dropout = true;
    r.reason = "dropped out mid-round (simulated)";
    r.virtual_seconds = when * duration;
  } else if (duration > deadline_) {
    r.abandon = r.straggler = true;
    r.reason = absl::StrFormat("would need %.1f virtual seconds, over the %.1f s deadline",
                               duration, deadline_);
    r.virtual_seconds = deadline_;
  } else {
    r.virtual_seconds = duration;
  }
  return r;
}

void VirtualFleet::Worker() {
  TaskExecutorOptions options;
  options.device = config_.device;
  TaskExecutor executor(options);
  while (true) {
    Job job;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      // Largest client first within a short window: a round's tail is its slowest client,
      // so starting the big ones early keeps every worker busy to the end. Updates still go
      // to the coordinator in dispatch order; the window bounds how many wait for their turn.
      // The window is anchored at the oldest job, which is therefore taken after at most
      // `window` others: pending updates stay bounded whatever the sizes.
      const size_t window = std::min(queue_.size(), kPickWindow * num_workers_);
      const Job& front = queue_.front();
      size_t pick = 0;
      for (size_t i = 1; i < window; ++i) {
        if (queue_[i].batch != front.batch || queue_[i].seq >= front.seq + window) break;
        if (clients_[queue_[i].client]->size > clients_[queue_[pick].client]->size) {
          pick = i;
        }
      }
      job = std::move(queue_[pick]);
      queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(pick));
    }
    Client& c = *clients_[job.client];
    Result r = Plan(job);
    if (!r.abandon) {
      std::unique_ptr<FleetTransport> transport = TransportFor(c);
      bool refused = false;  // by the client's own privacy budget: not a simulator error
      absl::Status s = [&]() -> absl::Status {
        std::shared_ptr<const coordinator::ModelSnapshot> model;  // in-process: shared
        ArrayRecord fetched;  // over gRPC: the client's own copy, as a real client has
        const ArrayRecord* weights = &fetched;
        if (grpc_ != nullptr) {
          TESSERA_ASSIGN_OR_RETURN(fetched, transport->FetchModel(job.task));
        } else {
          TESSERA_ASSIGN_OR_RETURN(model, runs_->ModelForTask(job.task.task_id(), c.name));
          runs_->CountBytesDown(job.task.task_id(), model->weights.TotalBytes());
          weights = &model->weights;
        }
        TaskExecutor* ex = &executor;
        std::unique_ptr<TaskExecutor> own;  // a language-model client's, for this task
        Dataset data;
        if (job.task.model().has_causal_lm()) {
          // The client's own workload (its text) on the shared base: cheap to build, since
          // LmBaseCache hashes and loads the checkpoint once and the tokenizer is shared.
          if (base_checkpoint_.empty()) {
            return absl::FailedPreconditionError(
                "a [model.causal_lm] run needs simulation.dataset = \"jsonl:FILE\" and "
                "simulation.base_checkpoint");
          }
          TaskExecutorOptions o = options;
          o.base_checkpoint = base_checkpoint_;
          o.text_path = c.text_path;
          own = std::make_unique<TaskExecutor>(std::move(o));
          ex = own.get();
        } else {
          TESSERA_ASSIGN_OR_RETURN(data, Subset(*train_, c.indices));
          if (c.noise_std > 0) AddFeatureNoise(data, c.noise_std, seed_ + job.client);
        }
        TESSERA_RETURN_IF_ERROR(ex->EnsureModel(job.task, *transport));
        if (job.task.dp().record().enabled()) {
          // Record-level DP: the virtual client's own budget, in memory for the run. A language
          // model's records are its training sequences (the workload's, after tokenizing).
          const uint64_t n = job.task.model().has_causal_lm() && ex->lm() != nullptr
                                 ? ex->lm()->num_train_examples()
                                 : data.size();
          if (c.state.ledger == nullptr && !config_.privacy_budget.empty()) {
            TESSERA_ASSIGN_OR_RETURN(PrivacyBudget budget,
                                     ParsePrivacyBudget(config_.privacy_budget));
            TESSERA_ASSIGN_OR_RETURN(SiteLedger ledger, SiteLedger::Open("", c.name, budget, n));
            c.state.ledger = std::make_shared<SiteLedger>(std::move(ledger));
          }
          if (absl::Status s = ChargeSiteBudget(job.task, n, c.state, *transport); !s.ok()) {
            refused = absl::StartsWith(s.message(), "refused: ");
            return s;
          }
        }
        TESSERA_ASSIGN_OR_RETURN(PreparedUpdate p,
                                 ex->Train(job.task, *weights, data, c.state, c.name));
        r.update = std::make_shared<PreparedUpdate>(std::move(p));
        return absl::OkStatus();
      }();
      if (!s.ok()) {
        r.abandon = true;
        r.reason = absl::StrCat(refused ? "" : "training failed: ", s.message());
        absl::MutexLock l(&mu_);
        if (error_.ok() && !refused) error_ = s;
      }
    }
    if (r.secagg && r.update != nullptr) {
      // The protocol waits for the round's other clients: it gets its own thread.
      std::shared_ptr<PreparedUpdate> prepared = r.update;
      absl::MutexLock l(&mu_);
      secagg_threads_.emplace_back([this, task = job.task, prepared, &c] {
        SecAggParticipantOptions o;
        absl::StatusOr<secagg::Signer> signer = secagg::EphemeralSigner();
        if (!signer.ok()) return;
        o.signer = *signer;
        o.verify = secagg::InsecureVerifier();
        absl::StatusOr<uint32_t> s = SendUpdate(task, *prepared, o, *TransportFor(c));
        if (!s.ok()) VLOG(1) << c.name << ": secure aggregation ended: " << s.status();
      });
    }
    Settle(job.batch, job.seq, std::move(r));
  }
}

}  // namespace tessera::sim

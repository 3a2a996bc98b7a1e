#include "tools/bench/federation_support.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "core/serde/session_metadata.h"
#include "core/serde/tensor_stream.h"

namespace tessera::bench {

ArrayRecord BenchModel(int64_t params) {
  ArrayRecord r;
  const int64_t per = std::max<int64_t>(1, params / 4);
  for (int i = 0; i < 4; ++i) {
    std::vector<float> v(static_cast<size_t>(per), 0.01f * static_cast<float>(i + 1));
    r.tensors.push_back(*Tensor::FromFloats(absl::StrCat("layer", i, ".weight"), {per}, v));
  }
  return r;
}

std::string CreateBenchRun(wire::v1::Control::Stub& control, const ArrayRecord& model,
                           uint32_t clients, uint32_t rounds, bool secure) {
  grpc::ClientContext ctx;
  wire::v1::RunStatus status;
  auto w = control.CreateRun(&ctx, &status);
  wire::v1::CreateRunRequest m;
  auto* c = m.mutable_config();
  c->set_name("bench");
  c->set_rounds(rounds);
  c->mutable_model()->set_architecture("mlp");
  c->mutable_train()->set_local_epochs(1);
  c->mutable_train()->set_batch_size(32);
  c->mutable_train()->set_learning_rate(0.01);
  c->mutable_selection()->set_clients_per_round(clients);
  c->mutable_selection()->set_min_clients(clients);
  c->mutable_selection()->set_wait_for_clients_seconds(300);
  c->mutable_round()->set_deadline_seconds(600);
  c->mutable_round()->set_max_retries(0);
  c->mutable_evaluation()->set_every(0);
  c->mutable_evaluation()->set_deadline_seconds(60);
  if (secure) {
    auto* sa = c->mutable_secure_aggregation();
    sa->set_enabled(true);
    sa->set_dropout_fraction(0.1);
    sa->set_corrupt_fraction(0.1);
    sa->set_security_bits(40);
    sa->set_clip(1.0);
    sa->set_value_bits(24);
    sa->set_max_examples(1000);
    sa->set_phase_deadline_seconds(120);
  }
  w->Write(m);
  TensorStreamWriter stream(&model);
  while (true) {
    m.Clear();
    if (!stream.Next(m.mutable_weights())) break;
    w->Write(m);
  }
  w->WritesDone();
  grpc::Status s = w->Finish();
  if (!s.ok()) {
    std::fprintf(stderr, "CreateRun: %s\n", s.error_message().c_str());
    return "";
  }
  grpc::ClientContext sctx;
  wire::v1::RunRef ref;
  ref.set_run_id(status.run_id());
  s = control.StartRun(&sctx, ref, &status);
  if (!s.ok()) {
    std::fprintf(stderr, "StartRun: %s\n", s.error_message().c_str());
    return "";
  }
  return status.run_id();
}

grpc::Status PushBenchUpdate(wire::v1::Fleet::Stub& stub, const std::string& session,
                             const wire::v1::Task& task, const ArrayRecord& update,
                             std::optional<std::string> digest) {
  grpc::ClientContext ctx;
  ctx.AddMetadata(kSessionMetadataKey, session);
  wire::v1::PushUpdateResponse resp;
  auto w = stub.PushUpdate(&ctx, &resp);
  wire::v1::PushUpdateRequest m;
  m.mutable_header()->set_task_id(task.task_id());
  m.mutable_header()->set_num_examples(1);
  w->Write(m);
  TensorStreamWriter stream(&update, std::move(digest), kUploadChunkBytes);  // as clients do
  while (true) {
    m.Clear();
    if (!stream.Next(m.mutable_chunk())) break;
    if (!w->Write(m)) break;
  }
  w->WritesDone();
  return w->Finish();
}

wire::v1::RunStatus AwaitRunEnd(wire::v1::Control::Stub& control, const std::string& run,
                                double seconds) {
  using Clock = std::chrono::steady_clock;
  wire::v1::RunStatus status;
  const auto until = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1e3));
  while (Clock::now() < until) {
    grpc::ClientContext ctx;
    wire::v1::RunRef ref;
    ref.set_run_id(run);
    control.GetRunStatus(&ctx, ref, &status);
    if (status.state() == wire::v1::COMPLETED || status.state() == wire::v1::FAILED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return status;
}

uint64_t ProcStatusField(pid_t pid, const std::string& name) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  const std::string key = name + ":";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoull(line.substr(key.size()));
  }
  return 0;
}

uint64_t PeakRssBytes(pid_t pid) { return ProcStatusField(pid, "VmHWM") * 1024; }

CpuSeconds ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(in, line);
  // Field 2 is "(comm)", which may hold spaces: fields 14 and 15 count from the last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {static_cast<double>(utime) / tick, static_cast<double>(stime) / tick};
}

uint64_t OpenFileCount(pid_t pid) {
  std::error_code ec;
  uint64_t n = 0;
  for (std::filesystem::directory_iterator it(absl::StrCat("/proc/", pid, "/fd"), ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return n;
}

}  // namespace tessera::bench

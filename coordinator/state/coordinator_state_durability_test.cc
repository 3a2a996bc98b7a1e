// The durability guarantee of CoordinatorState under power loss, not just a process crash.
//
// Killing a process (coordinator_state_crash_test) keeps everything it wrote in the page
// cache, so that test passes even if nothing is ever fsynced. Here RocksDB's file access
// goes through DropUnsyncedFs, a rocksdb::FileSystemWrapper that records, per file, how
// many bytes were last made durable by Sync/Fsync and whether its directory entry was made
// durable by an fsync of its directory. SimulatePowerLoss() then does what a power cut may
// do to an ext4/xfs volume: every file is cut back to its synced length and every file whose
// directory entry was never synced disappears (the method of RocksDB's own
// FaultInjectionTestFS, reimplemented on the public FileSystem API of RocksDB 7.8). The
// database is then reopened with the ordinary file system.
//
// Why this proves the sync: after SimulatePowerLoss the directory holds only bytes that a
// Sync/Fsync covered, so a record that is readable afterwards was synced before the write
// returned (the crash point is right after it). The test also stores one deliberately
// unsynced record (PutClient) after the commit and checks that it is gone: the fault does
// drop what was not synced. With SyncedWrite() flipped to sync = false the committed round
// is lost and CommittedRoundSurvivesPowerLoss fails (docs/operations.md, "Durability").
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "coordinator/state/coordinator_state.h"
#include "core/base/testing/status_matchers.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace tessera {
namespace coordinator {
namespace {

namespace fs = std::filesystem;

std::string Normal(const std::string& path) { return fs::path(path).lexically_normal(); }
std::string DirOf(const std::string& path) {
  return fs::path(path).lexically_normal().parent_path();
}

// What a power cut keeps of each file RocksDB wrote through this file system.
class DropUnsyncedFs : public rocksdb::FileSystemWrapper {
 public:
  explicit DropUnsyncedFs(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base) {}
  const char* Name() const override { return "DropUnsyncedFs"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, r, dbg);
    if (s.ok()) Wrap(f, /*existing_size=*/0, /*new_entry=*/true, r);
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    std::error_code ec;
    const bool existed = fs::exists(f, ec);
    const uint64_t size = existed ? fs::file_size(f, ec) : 0;
    rocksdb::IOStatus s = target()->ReopenWritableFile(f, o, r, dbg);
    if (s.ok()) Wrap(f, size, /*new_entry=*/!existed, r);
    return s;
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->ReuseWritableFile(f, old, o, r, dbg);
    if (s.ok()) {
      Forget(old);
      Wrap(f, 0, /*new_entry=*/true, r);
    }
    return s;
  }
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& o,
                                 std::unique_ptr<rocksdb::FSDirectory>* r,
                                 rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewDirectory(name, o, r, dbg);
    if (s.ok()) *r = std::make_unique<Directory>(this, Normal(name), std::move(*r));
    return s;
  }
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (powered_off_) return rocksdb::IOStatus::OK();  // nothing happens after the cut
    }
    rocksdb::IOStatus s = target()->DeleteFile(f, o, dbg);
    if (s.ok()) Forget(f);
    return s;
  }
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (powered_off_) return rocksdb::IOStatus::OK();
    }
    rocksdb::IOStatus s = target()->RenameFile(src, dst, o, dbg);
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> l(mu_);
    auto it = files_.find(Normal(src));
    File moved = it != files_.end() ? it->second : File{};
    if (it == files_.end()) {
      std::error_code ec;
      moved.size = moved.synced = fs::file_size(dst, ec);
    }
    if (it != files_.end()) files_.erase(it);
    moved.entry_synced = false;  // the new name is durable once its directory is synced
    files_[Normal(dst)] = moved;
    return s;
  }

  // From now on nothing written, synced, renamed or deleted counts: what follows (closing
  // the database) never happened on the disk.
  void PowerOff() {
    std::lock_guard<std::mutex> l(mu_);
    powered_off_ = true;
  }
  // Cuts every file back to what was synced; removes files whose entry was never synced.
  // Returns a line per file changed, for the test log.
  std::vector<std::string> DropUnsynced() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<std::string> changed;
    for (const auto& [name, file] : files_) {
      std::error_code ec;
      if (!fs::exists(name, ec)) continue;
      if (!file.entry_synced) {
        fs::remove(name, ec);
        changed.push_back(name + ": directory entry not synced, removed");
        continue;
      }
      const uint64_t size = fs::file_size(name, ec);
      if (size > file.synced) {
        fs::resize_file(name, file.synced, ec);
        changed.push_back(name + ": " + std::to_string(size) + " -> " +
                          std::to_string(file.synced) + " bytes");
      }
    }
    return changed;
  }

 private:
  struct File {
    uint64_t size = 0;    // bytes written
    uint64_t synced = 0;  // bytes a Sync/Fsync made durable
    bool entry_synced = false;
  };

  class Writable : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    Writable(DropUnsyncedFs* fs, std::string name, std::unique_ptr<rocksdb::FSWritableFile> t)
        : FSWritableFileOwnerWrapper(std::move(t)), fs_(fs), name_(std::move(name)) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      rocksdb::IOStatus s = target()->Append(data, o, dbg);
      if (s.ok()) fs_->Grow(name_, data.size());
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v,
                             rocksdb::IODebugContext* dbg) override {
      rocksdb::IOStatus s = target()->Append(data, o, v, dbg);
      if (s.ok()) fs_->Grow(name_, data.size());
      return s;
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                       const rocksdb::IOOptions& o,
                                       rocksdb::IODebugContext* dbg) override {
      rocksdb::IOStatus s = target()->PositionedAppend(data, offset, o, dbg);
      if (s.ok()) fs_->GrowTo(name_, offset + data.size());
      return s;
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                       const rocksdb::IOOptions& o,
                                       const rocksdb::DataVerificationInfo& v,
                                       rocksdb::IODebugContext* dbg) override {
      rocksdb::IOStatus s = target()->PositionedAppend(data, offset, o, v, dbg);
      if (s.ok()) fs_->GrowTo(name_, offset + data.size());
      return s;
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      rocksdb::IOStatus s = target()->Sync(o, dbg);
      if (s.ok()) fs_->MarkSynced(name_);
      return s;
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      rocksdb::IOStatus s = target()->Fsync(o, dbg);
      if (s.ok()) fs_->MarkSynced(name_);
      return s;
    }
    // RangeSync (sync_file_range) and Close make nothing durable: not counted.

   private:
    DropUnsyncedFs* const fs_;
    const std::string name_;
  };

  class Directory : public rocksdb::FSDirectoryWrapper {
   public:
    Directory(DropUnsyncedFs* fs, std::string name, std::unique_ptr<rocksdb::FSDirectory> t)
        : FSDirectoryWrapper(std::move(t)), fs_(fs), name_(std::move(name)) {}
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      rocksdb::IOStatus s = FSDirectoryWrapper::Fsync(o, dbg);
      if (s.ok()) fs_->MarkDirectorySynced(name_);
      return s;
    }
    rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& o,
                                          rocksdb::IODebugContext* dbg,
                                          const rocksdb::DirFsyncOptions& d) override {
      rocksdb::IOStatus s = FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d);
      if (s.ok()) fs_->MarkDirectorySynced(name_);
      return s;
    }

   private:
    DropUnsyncedFs* const fs_;
    const std::string name_;
  };

  void Wrap(const std::string& name, uint64_t existing_size, bool new_entry,
            std::unique_ptr<rocksdb::FSWritableFile>* r) {
    const std::string key = Normal(name);
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!powered_off_) {
        File& f = files_[key];
        f.size = f.synced = existing_size;  // a reopened file's old bytes count as synced
        if (new_entry) f.entry_synced = false;
        if (!new_entry && existing_size > 0) f.entry_synced = true;
      }
    }
    *r = std::make_unique<Writable>(this, key, std::move(*r));
  }
  void Forget(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    if (!powered_off_) files_.erase(Normal(name));
  }
  void Grow(const std::string& name, uint64_t bytes) {
    std::lock_guard<std::mutex> l(mu_);
    if (!powered_off_) files_[name].size += bytes;
  }
  void GrowTo(const std::string& name, uint64_t end) {
    std::lock_guard<std::mutex> l(mu_);
    if (!powered_off_ && files_[name].size < end) files_[name].size = end;
  }
  void MarkSynced(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    if (!powered_off_) files_[name].synced = files_[name].size;
  }
  void MarkDirectorySynced(const std::string& dir) {
    std::lock_guard<std::mutex> l(mu_);
    if (powered_off_) return;
    for (auto& [name, file] : files_) {
      if (DirOf(name) == dir) file.entry_synced = true;
    }
  }

  std::mutex mu_;
  bool powered_off_ = false;
  std::map<std::string, File> files_;
};

// `n` float32 values v, v+1, ... in tensors of 100,000 (above RocksDB's 64 KiB blob size).
ArrayRecord MakeModel(float v, size_t n) {
  ArrayRecord model;
  for (size_t start = 0, i = 0; start < n; start += 100000, ++i) {
    const size_t len = std::min<size_t>(100000, n - start);
    std::vector<float> values(len);
    for (size_t j = 0; j < len; ++j) values[j] = v + static_cast<float>(start + j);
    model.tensors.push_back(
        *Tensor::FromFloats("t" + std::to_string(i), {static_cast<int64_t>(len)}, values));
  }
  return model;
}

// A completed round's summary.
wire::v1::RoundSummary Completed(uint32_t round) {
  wire::v1::RoundSummary summary;
  summary.set_round(round);
  summary.set_attempt(1);
  summary.set_state(wire::v1::ROUND_COMPLETED);
  return summary;
}

// The model of `round` is MakeModel(value, n), bit for bit.
void ExpectModel(CoordinatorState& state, const std::string& run_id, uint32_t round,
                 float value, size_t n) {
  absl::StatusOr<ArrayRecord> model = state.LoadModel(run_id, round);
  ASSERT_THAT(model, IsOk()) << "round " << round;
  const ArrayRecord expected = MakeModel(value, n);
  ASSERT_EQ(model->tensors.size(), expected.tensors.size());
  for (size_t i = 0; i < expected.tensors.size(); ++i) {
    ASSERT_EQ(model->tensors[i].data(), expected.tensors[i].data())
        << "round " << round << " tensor " << i;
  }
}

class DurabilityTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = testing::TempDir() + "coordinator_state_durability_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    fs_ = std::make_shared<DropUnsyncedFs>(rocksdb::FileSystem::Default());
    env_ = rocksdb::NewCompositeEnv(fs_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A state whose files go through the fault file system; CreateRun of `run_id` done.
  std::unique_ptr<CoordinatorState> OpenWithRun(const std::string& run_id, size_t values,
                                                absl::string_view artifact) {
    absl::StatusOr<std::unique_ptr<CoordinatorState>> state =
        CoordinatorState::TEST_OpenWithEnv(dir_, env_.get());
    EXPECT_THAT(state, IsOk());
    if (!state.ok()) return nullptr;
    storage::v1::RunRecord run;
    run.set_run_id(run_id);
    EXPECT_THAT((*state)->CreateRun(run, MakeModel(0, values), artifact), IsOk());
    return *std::move(state);
  }

  // Pulls the plug on `state` (nothing it does from here reaches the disk), closes it, and
  // leaves on disk only what was synced.
  void PowerLoss(std::unique_ptr<CoordinatorState> state) {
    fs_->PowerOff();
    state.reset();
    for (const std::string& line : fs_->DropUnsynced()) {
      std::cerr << "power loss: " << line << "\n";
    }
  }

  std::string dir_;
  std::shared_ptr<DropUnsyncedFs> fs_;
  std::unique_ptr<rocksdb::Env> env_;
};

TEST_F(DurabilityTest, CommittedRoundSurvivesPowerLoss) {
  // 500k floats: the tensors are written by separate unsynced puts before the synced batch
  // that commits them, so this also checks that the commit's sync covers them.
  const size_t kValues = 500000;
  {
    std::unique_ptr<CoordinatorState> state = OpenWithRun("durable", kValues, "artifact");
    ASSERT_NE(state, nullptr);
    storage::v1::RunRecord run;
    run.set_run_id("durable");
    run.set_completed_rounds(1);
    run.set_state(wire::v1::RUNNING);
    ASSERT_THAT(state->CommitRound(run, Completed(1), MakeModel(1, kValues)), IsOk());
    // Deliberately not synced (see PutClient): must be lost, or the fault has no teeth.
    storage::v1::ClientRecord client;
    client.set_name("unsynced-client");
    ASSERT_THAT(state->PutClient(client), IsOk());
    PowerLoss(std::move(state));
  }
  absl::StatusOr<std::unique_ptr<CoordinatorState>> state = CoordinatorState::Open(dir_);
  ASSERT_THAT(state, IsOk());
  // The fault dropped unsynced data: the unsynced client record is gone.
  EXPECT_THAT((*state)->ListClients(), IsOkAndHolds(testing::IsEmpty()));
  // The synced commit is whole.
  absl::StatusOr<storage::v1::RunRecord> run = (*state)->GetRun("durable");
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->completed_rounds(), 1u);
  EXPECT_EQ(run->state(), wire::v1::RUNNING);
  EXPECT_THAT((*state)->ListRounds("durable"), IsOkAndHolds(testing::SizeIs(1)));
  ExpectModel(**state, "durable", 1, 1, kValues);
  EXPECT_THAT((*state)->LoadArtifact("durable"), IsOkAndHolds(std::string("artifact")));
}

TEST_F(DurabilityTest, LargeCommitSurvivesPowerLossDuringFlush) {
  // 3 x 12 MB models: memtables (8 MiB) fill and flush to SST and blob files in the
  // background while later writes go on, so the cut lands amid flushes and file creations.
  const size_t kValues = 3000000;
  {
    std::unique_ptr<CoordinatorState> state = OpenWithRun("large", kValues, "");
    ASSERT_NE(state, nullptr);
    storage::v1::RunRecord run;
    run.set_run_id("large");
    for (uint32_t r = 1; r <= 2; ++r) {
      run.set_completed_rounds(r);
      ASSERT_THAT(state->CommitRound(run, Completed(r), MakeModel(static_cast<float>(r), kValues)),
                  IsOk());
    }
    PowerLoss(std::move(state));
  }
  absl::StatusOr<std::unique_ptr<CoordinatorState>> state = CoordinatorState::Open(dir_);
  ASSERT_THAT(state, IsOk());
  absl::StatusOr<storage::v1::RunRecord> run = (*state)->GetRun("large");
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->completed_rounds(), 2u);
  for (uint32_t r = 0; r <= 2; ++r) {
    ExpectModel(**state, "large", r, static_cast<float>(r), kValues);
  }
}

}  // namespace
}  // namespace coordinator
}  // namespace tessera

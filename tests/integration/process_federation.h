// Test fixture for end-to-end tests with real processes: a throw-away PKI for clients
// org-0..org-(n-1), a tessera-coordinator over mTLS on 127.0.0.1 (state in a temp dir), and
// room for client processes. Skips when dataset-fashion-mnist is not installed. Shared by
// secagg_federation_test.cc and dp_federation_test.cc.
#ifndef TESSERA_TESTS_INTEGRATION_PROCESS_FEDERATION_H_
#define TESSERA_TESTS_INTEGRATION_PROCESS_FEDERATION_H_

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/process.h"

namespace tessera::testing_support {

inline constexpr char kFashionMnist[] = "/usr/share/datasets/fashion-mnist";

class ProcessFederation : public ::testing::Test {
 protected:
  // `prefix` names the temp dir; `clients` certificates are issued.
  ProcessFederation(std::string prefix, int clients)
      : prefix_(std::move(prefix)), num_clients_(clients) {}

  void SetUp() override {
    if (!std::filesystem::exists(std::string(kFashionMnist) + "/t10k-labels-idx1-ubyte.gz")) {
      GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    }
    dir_ = MakeTempDir(prefix_);
    for (int i = 0; i < num_clients_; ++i) names_.push_back("org-" + std::to_string(i));
    ASSERT_TRUE(MakePki(dir_ + "/pki", names_));
    StartCoordinator();
  }
  void TearDown() override {
    clients_.clear();
    coordinator_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // (Re)starts the coordinator on the state in dir_.
  void StartCoordinator() {
    coordinator_ = testing_support::StartCoordinator(dir_, &port_, CoordinatorArgs());
    ASSERT_NE(coordinator_, nullptr) << ReadFileOrEmpty(dir_ + "/coordinator.log");
  }

  // One tessera-client process per name (LibTorch training on the CPU, one thread), client i
  // on the i-th of num_clients_ IID partitions of the first `limit` Fashion-MNIST training
  // examples; logs in dir_/NAME.log.
  void StartClients(int limit) {
    for (int i = 0; i < num_clients_; ++i) {
      clients_.push_back(std::make_unique<Process>(
          std::vector<std::string>{
              BinDir() + "/tessera-client", "--coordinator", Address(), "--name", names_[i],
              "--ca", Pki("ca.pem"), "--cert", Pki(names_[i] + ".pem"), "--key",
              Pki(names_[i] + ".key"), "--device", "cpu", "--threads", "1", "--data",
              std::string("idx:") + kFashionMnist, "--partition", "iid", "--num-partitions",
              std::to_string(num_clients_), "--partition-index", std::to_string(i), "--limit",
              std::to_string(limit)},
          dir_ + "/" + names_[i] + ".log", std::vector<std::string>{"OPENBLAS_NUM_THREADS=1"}));
    }
  }

  // More tessera-coordinator flags (dir_ is set when this is called).
  virtual std::vector<std::string> CoordinatorArgs() const { return {}; }

  std::string Address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string Pki(const std::string& f) const { return dir_ + "/pki/" + f; }

  const std::string prefix_;
  const int num_clients_;
  std::string dir_;
  int port_ = 0;
  std::vector<std::string> names_;
  std::unique_ptr<Process> coordinator_;
  std::vector<std::unique_ptr<Process>> clients_;
};

}  // namespace tessera::testing_support

#endif  // TESSERA_TESTS_INTEGRATION_PROCESS_FEDERATION_H_

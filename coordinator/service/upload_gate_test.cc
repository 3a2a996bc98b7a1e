#include "coordinator/service/upload_gate.h"

#include <vector>

#include <gtest/gtest.h>

namespace tessera::coordinator {
namespace {

TEST(UploadGateTest, AdmitsUpToItsSlotsAndHandsFreedSlotsOnInOrder) {
  UploadGate gate(2);
  std::vector<int> started;
  for (int i = 0; i < 5; ++i) gate.Enter([&started, i] { started.push_back(i); });
  EXPECT_EQ(started, (std::vector<int>{0, 1}));
  gate.Leave();
  EXPECT_EQ(started, (std::vector<int>{0, 1, 2}));
  gate.Leave();
  gate.Leave();
  EXPECT_EQ(started, (std::vector<int>{0, 1, 2, 3, 4}));
  // All five left eventually: the two slots are free again.
  gate.Leave();
  gate.Leave();
  gate.Enter([&started] { started.push_back(5); });
  gate.Enter([&started] { started.push_back(6); });
  EXPECT_EQ(started.size(), 7u);
}

TEST(UploadGateTest, ZeroSlotsMeansOne) {
  UploadGate gate(0);
  int started = 0;
  gate.Enter([&] { ++started; });
  gate.Enter([&] { ++started; });
  EXPECT_EQ(started, 1);
  gate.Leave();
  EXPECT_EQ(started, 2);
}

}  // namespace
}  // namespace tessera::coordinator

#include "coordinator/round/peer_text.h"

#include <gtest/gtest.h>

#include <string>

namespace tessera::coordinator {
namespace {

TEST(PeerTextTest, EscapesEverythingThatCouldEndOrForgeALogLine) {
  EXPECT_EQ(PeerText("site-a"), "site-a");
  EXPECT_EQ(PeerText("a\nI1206 00:00:00 forged"), "a\\nI1206 00:00:00 forged");
  EXPECT_EQ(PeerText(std::string("x\0y", 3)), "x\\x00y");
  EXPECT_EQ(PeerText(std::string("x\0b", 3)), "x\\x00\\x62");  // not "\x00b": 0x0b
  EXPECT_EQ(PeerText("\r\t\"'\\"), "\\r\\t\\\"\\'\\\\");
  EXPECT_EQ(PeerText("\x1b[31m"), "\\x1b[31m");
  EXPECT_EQ(PeerText("\xc3\xa9"), "\\xc3\\xa9");  // "é": bytes over 0x7E are escaped too
}

TEST(PeerTextTest, CapsLongInputAndSaysHowLongItWas) {
  EXPECT_EQ(PeerText(std::string(128, 'x')), std::string(128, 'x'));
  EXPECT_EQ(PeerText(std::string(20000, 'r')), std::string(128, 'r') + "...(20000 bytes)");
  EXPECT_EQ(PeerText("abcdef", 3), "abc...(6 bytes)");
  EXPECT_EQ(PeerText("\n\n\n\n", 2), "\\n\\n...(4 bytes)");
}

}  // namespace
}  // namespace tessera::coordinator

#include "core/base/byte_order.h"

#include <gtest/gtest.h>

#include <string>

namespace tessera {
namespace {

using std::string_literals::operator""s;

TEST(ByteOrderTest, BigEndianPutsMostSignificantByteFirst) {
  std::string out;
  AppendBigEndian(out, 0x01020304, 4);
  EXPECT_EQ(out, "\x01\x02\x03\x04"s);
}

TEST(ByteOrderTest, LittleEndianPutsLeastSignificantByteFirst) {
  std::string out;
  AppendLittleEndian(out, 0x0102030405060708, 8);
  EXPECT_EQ(out, "\x08\x07\x06\x05\x04\x03\x02\x01"s);
}

TEST(ByteOrderTest, AppendsAfterExistingBytes) {
  std::string out = "ab";
  AppendBigEndian(out, 0xFFFFFFFF, 4);
  AppendLittleEndian(out, 0x80, 2);
  EXPECT_EQ(out, "ab\xff\xff\xff\xff\x80\x00"s);
}

TEST(ByteOrderTest, NarrowWidthKeepsOnlyLowBytes) {
  std::string big;
  AppendBigEndian(big, 0x123456, 2);
  EXPECT_EQ(big, "\x34\x56"s);
  std::string little;
  AppendLittleEndian(little, 0x123456, 1);
  EXPECT_EQ(little, "\x56"s);
}

TEST(ByteOrderTest, ZeroWidthAppendsNothing) {
  std::string out = "x";
  AppendBigEndian(out, 0xFF, 0);
  AppendLittleEndian(out, 0xFF, 0);
  EXPECT_EQ(out, "x");
}

TEST(ByteOrderTest, WidthAboveEightIsZeroPadded) {
  std::string big;
  AppendBigEndian(big, 0x0102030405060708, 10);
  EXPECT_EQ(big, "\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08"s);
  std::string little;
  AppendLittleEndian(little, 0x0102030405060708, 10);
  EXPECT_EQ(little, "\x08\x07\x06\x05\x04\x03\x02\x01\x00\x00"s);
}

TEST(ByteOrderTest, LoadsReadTheByteOrderTheyName) {
  const std::string bytes = "\x01\x02\x03\x04\x05\x06\x07\x08"s;
  EXPECT_EQ(LoadBigEndian(bytes.data(), 4), 0x01020304u);
  EXPECT_EQ(LoadBigEndian(bytes.data(), 8), 0x0102030405060708u);
  EXPECT_EQ(LoadLittleEndian(bytes.data(), 2), 0x0201u);
  EXPECT_EQ(LoadLittleEndian(bytes.data(), 8), 0x0807060504030201u);
  EXPECT_EQ(LoadBigEndian(bytes.data(), 0), 0u);
  // Bytes above 0x7F are not sign-extended.
  EXPECT_EQ(LoadBigEndian("\xff\x80", 2), 0xFF80u);
  EXPECT_EQ(LoadLittleEndian("\xff\x80", 2), 0x80FFu);
}

TEST(ByteOrderTest, LoadsInvertAppendsAtEveryWidth) {
  for (size_t width = 1; width <= 8; ++width) {
    const uint64_t v = 0xF1E2D3C4B5A69788ull >> (8 * (8 - width));
    std::string be, le;
    AppendBigEndian(be, v, width);
    AppendLittleEndian(le, v, width);
    EXPECT_EQ(LoadBigEndian(be.data(), width), v) << width;
    EXPECT_EQ(LoadLittleEndian(le.data(), width), v) << width;
  }
}

}  // namespace
}  // namespace tessera

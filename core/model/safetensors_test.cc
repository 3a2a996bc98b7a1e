#include "core/model/safetensors.h"
#include "core/model/testing/tensor_builders.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ArrayRecord MixedRecord() {
  ArrayRecord r;
  r.tensors.push_back(
      MakeTensor<float>("conv.weight", DType::kFloat32, {2, 3}, {1, 2, 3, 4, 5, 6}));
  r.tensors.push_back(MakeTensor<int64_t>("bn.num_batches_tracked", DType::kInt64, {},
                                    {123456789012}));
  r.tensors.push_back(MakeTensor<uint8_t>("mask", DType::kBool, {3}, {1, 0, 1}));
  r.tensors.push_back(MakeTensor<double>("scale", DType::kFloat64, {1}, {-0.5}));
  r.tensors.push_back(
      MakeTensor<uint16_t>("half", DType::kFloat16, {2}, {0x3C00, 0xC000}));
  r.tensors.push_back(MakeTensor<int8_t>("q", DType::kInt8, {0}, {}));
  r.tensors.push_back(
      MakeTensor<int32_t>("counts", DType::kInt32, {1, 1, 2}, {-7, 7}));
  return r;
}

// Assembles a file from a raw header (padded here) and a data section.
std::string Build(absl::string_view header, absl::string_view data) {
  std::string h(header);
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string out;
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out + h + std::string(data);
}

void ExpectSameRecord(const ArrayRecord& a, const ArrayRecord& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name(), b.tensors[i].name());
    EXPECT_EQ(a.tensors[i].dtype(), b.tensors[i].dtype());
    EXPECT_EQ(a.tensors[i].shape(), b.tensors[i].shape());
    EXPECT_EQ(a.tensors[i].data(), b.tensors[i].data()) << a.tensors[i].name();
  }
}

TEST(SafetensorsTest, RoundTripsDTypesScalarsAndEmptyTensors) {
  const ArrayRecord record = MixedRecord();
  const std::map<std::string, std::string> meta = {{"format", "pt"},
                                                   {"round", "7"}};
  absl::StatusOr<std::string> bytes = SerializeSafetensors(record, meta);
  ASSERT_THAT(bytes, IsOk());
  std::map<std::string, std::string> meta_back = {{"stale", "x"}};
  absl::StatusOr<ArrayRecord> back = ParseSafetensors(*bytes, &meta_back);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(meta_back, meta);
  // The empty "q" shares its offset with "counts" and sorts first by its
  // smaller end, which is also its record position.
  ExpectSameRecord(*back, record);
  EXPECT_TRUE(back->tensors[1].shape().empty());
}

TEST(SafetensorsTest, HeaderIsAlignedAndOmitsEmptyMetadata) {
  absl::StatusOr<std::string> bytes = SerializeSafetensors(MixedRecord());
  ASSERT_THAT(bytes, IsOk());
  uint64_t n = 0;
  std::memcpy(&n, bytes->data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes->find("__metadata__"), std::string::npos);
  EXPECT_EQ(bytes->size(), 8 + n + MixedRecord().TotalBytes());
}

TEST(SafetensorsTest, ByteExactSingleTensor) {
  ArrayRecord r;
  r.tensors.push_back(MakeTensor<float>("a", DType::kFloat32, {2}, {1.0f, 2.0f}));
  absl::StatusOr<std::string> bytes = SerializeSafetensors(r);
  ASSERT_THAT(bytes, IsOk());
  // 54-byte header + 2 spaces = 56 = 0x38; then 1.0f and 2.0f little-endian.
  const std::string expected =
      std::string("\x38\0\0\0\0\0\0\0", 8) +
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})" + "  " +
      std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  EXPECT_EQ(*bytes, expected);
}

TEST(SafetensorsTest, ByteExactWithMetadata) {
  ArrayRecord r;
  r.tensors.push_back(MakeTensor<uint8_t>("b", DType::kUInt8, {1}, {9}));
  absl::StatusOr<std::string> bytes = SerializeSafetensors(r, {{"k", "v"}});
  ASSERT_THAT(bytes, IsOk());
  const std::string header =
      R"({"__metadata__":{"k":"v"},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  EXPECT_EQ(*bytes, Build(header, "\x09"));
}

TEST(SafetensorsTest, EmptyRecord) {
  absl::StatusOr<std::string> bytes = SerializeSafetensors(ArrayRecord{});
  ASSERT_THAT(bytes, IsOk());
  EXPECT_EQ(*bytes, Build("{}", ""));
  absl::StatusOr<ArrayRecord> back = ParseSafetensors(*bytes);
  ASSERT_THAT(back, IsOk());
  EXPECT_TRUE(back->tensors.empty());
}

TEST(SafetensorsTest, ReturnsTensorsInDataOffsetOrder) {
  const std::string header =
      R"({"second":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},)"
      R"("first":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  absl::StatusOr<ArrayRecord> r = ParseSafetensors(Build(header, "AB"));
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->tensors.size(), 2u);
  EXPECT_EQ(r->tensors[0].name(), "first");
  EXPECT_EQ(r->tensors[0].data(), "A");
  EXPECT_EQ(r->tensors[1].name(), "second");
}

TEST(SafetensorsTest, SerializeRejectsBadRecords) {
  ArrayRecord dup;
  dup.tensors.push_back(MakeTensor<float>("w", DType::kFloat32, {1}, {1}));
  dup.tensors.push_back(MakeTensor<float>("w", DType::kFloat32, {1}, {1}));
  EXPECT_THAT(SerializeSafetensors(dup),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ArrayRecord reserved;
  reserved.tensors.push_back(
      MakeTensor<float>("__metadata__", DType::kFloat32, {1}, {1}));
  EXPECT_THAT(SerializeSafetensors(reserved),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ArrayRecord bad_utf8;
  bad_utf8.tensors.push_back(
      MakeTensor<float>("\xff\xfe", DType::kFloat32, {1}, {1}));
  EXPECT_THAT(SerializeSafetensors(bad_utf8),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

struct CorruptCase {
  const char* label;
  std::string bytes;
  const char* message;
};

std::string Le64(uint64_t n) {
  std::string out;
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out;
}

std::string Entry(absl::string_view name, absl::string_view dtype,
                  absl::string_view shape, absl::string_view offsets) {
  return absl::StrCat("\"", name, "\":{\"dtype\":\"", dtype,
                      "\",\"shape\":", shape, ",\"data_offsets\":", offsets,
                      "}");
}

TEST(SafetensorsTest, CorruptInputsAreInvalidArgument) {
  const std::string ok_entry = Entry("a", "F32", "[2]", "[0,8]");
  const std::string data8(8, '\0');
  const std::vector<CorruptCase> cases = {
      {"empty", "", "no 8-byte header length"},
      {"short", "\x01\x02\x03", "no 8-byte header length"},
      {"length past end", Le64(1000) + "{}", "exceeds the 2 bytes"},
      {"length over limit", Le64(100'000'001) + "{}", "exceeds the limit"},
      {"not an object", Build("[1,2]", ""), "does not start with '{'"},
      {"bad json", Build("{\"a\":", ""), "not valid JSON"},
      {"trailing garbage in header", Build("{}x", ""), "not valid JSON"},
      {"bad utf8", Build("{\"\xff\":1}", ""), "not valid JSON"},
      {"entry not object", Build("{\"a\":3}", ""), "not an object"},
      {"unknown dtype",
       Build("{" + Entry("a", "F8_E4M3", "[8]", "[0,8]") + "}", data8),
       "unsupported dtype"},
      {"long dtype name",
       Build("{" + Entry("a", "float32", "[2]", "[0,8]") + "}", data8),
       "unsupported dtype"},
      {"negative dim",
       Build("{" + Entry("a", "F32", "[-2]", "[0,8]") + "}", data8),
       "non-negative integer"},
      {"float dim",
       Build("{" + Entry("a", "F32", "[2.0]", "[0,8]") + "}", data8),
       "non-negative integer"},
      {"shape mismatch",
       Build("{" + Entry("a", "F32", "[3]", "[0,8]") + "}", data8),
       "needs 3 x 4 bytes"},
      {"huge shape",
       Build("{" + Entry("a", "F64", "[4611686018427387904,4]", "[0,8]") + "}",
             data8),
       "tensor \"a\""},
      {"end before begin",
       Build("{" + Entry("a", "F32", "[0]", "[8,0]") + "}", data8),
       "end before begin"},
      {"one offset", Build("{" + Entry("a", "F32", "[2]", "[8]") + "}", data8),
       "[begin, end]"},
      {"overlap",
       Build("{" + ok_entry + "," + Entry("b", "F32", "[1]", "[4,8]") + "}",
             data8),
       "overlap"},
      {"gap", Build("{" + Entry("a", "F32", "[1]", "[4,8]") + "}", data8),
       "leave a gap"},
      {"past buffer",
       Build("{" + Entry("a", "F32", "[4]", "[0,16]") + "}", data8),
       "data section has 8"},
      {"trailing bytes", Build("{" + ok_entry + "}", data8 + "xy"),
       "data section has 10"},
      {"duplicate name",
       Build("{" + ok_entry + "," + ok_entry + "}", data8 + data8),
       "duplicate header key \"a\""},
      {"duplicate field",
       Build(
           R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
           data8),
       "duplicate header key \"dtype\""},
      {"unknown field",
       Build(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})",
             data8),
       "unknown key \"x\""},
      {"missing field", Build(R"({"a":{"dtype":"F32","shape":[2]}})", data8),
       "missing \"data_offsets\""},
      {"metadata not object", Build("{\"__metadata__\":[]}", ""),
       "__metadata__"},
      {"metadata value not string", Build("{\"__metadata__\":{\"k\":1}}", ""),
       "\"k\" is not a string"},
      {"empty name", Build("{" + Entry("", "F32", "[2]", "[0,8]") + "}", data8),
       "name is empty"},
      {"rank too high",
       Build("{" + Entry("a", "U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") + "}", "z"),
       "rank 9"},
  };
  for (const CorruptCase& c : cases) {
    EXPECT_THAT(
        ParseSafetensors(c.bytes),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.label;
  }
}

TEST(SafetensorsTest, EveryTruncationIsRejected) {
  absl::StatusOr<std::string> bytes = SerializeSafetensors(MixedRecord());
  ASSERT_THAT(bytes, IsOk());
  for (size_t len = 0; len < bytes->size(); ++len) {
    EXPECT_THAT(ParseSafetensors(absl::string_view(*bytes).substr(0, len)),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << len;
  }
}

class SafetensorsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("safetensors_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(SafetensorsFileTest, WriteThenReadAndOverwrite) {
  const std::string path = (dir_ / "w.safetensors").string();
  TESSERA_ASSERT_OK(WriteSafetensorsFile(path, MixedRecord(), {{"k", "v"}}));
  std::map<std::string, std::string> meta;
  absl::StatusOr<ArrayRecord> back = ReadSafetensorsFile(path, &meta);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(meta.at("k"), "v");
  ExpectSameRecord(*back, MixedRecord());

  ArrayRecord small;
  small.tensors.push_back(MakeTensor<float>("x", DType::kFloat32, {1}, {3.0f}));
  TESSERA_ASSERT_OK(WriteSafetensorsFile(path, small));
  back = ReadSafetensorsFile(path);
  ASSERT_THAT(back, IsOk());
  ExpectSameRecord(*back, small);
  // No temporary files are left behind.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u);
}

TEST_F(SafetensorsFileTest, IoErrors) {
  EXPECT_THAT(
      ReadSafetensorsFile((dir_ / "missing.safetensors").string()),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.safetensors")));
  EXPECT_THAT(WriteSafetensorsFile(
                  (dir_ / "no/such/dir/w.safetensors").string(), MixedRecord()),
              StatusIs(absl::StatusCode::kNotFound));
  const std::string garbage = (dir_ / "garbage.safetensors").string();
  std::ofstream(garbage) << "not a safetensors file at all";
  EXPECT_THAT(ReadSafetensorsFile(garbage),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(garbage)));
}

// Cross-checks the format against an independent reader written with Python's
// json and struct modules (no numpy needed).
TEST_F(SafetensorsFileTest, ReadableByIndependentPythonReader) {
  if (::access("/usr/bin/python3", X_OK) != 0)
    GTEST_SKIP() << "no /usr/bin/python3";
  const std::string path = (dir_ / "py.safetensors").string();
  ArrayRecord r;
  r.tensors.push_back(
      MakeTensor<float>("w", DType::kFloat32, {2, 2}, {1.5f, -2, 0.25f, 8}));
  r.tensors.push_back(MakeTensor<int64_t>("n", DType::kInt64, {}, {-42}));
  r.tensors.push_back(MakeTensor<uint8_t>("m", DType::kBool, {2}, {1, 0}));
  TESSERA_ASSERT_OK(WriteSafetensorsFile(path, r, {{"format", "pt"}}));
  const std::string script = R"PY(
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
assert n % 8 == 0
h = json.loads(b[8:8 + n])
data = b[8 + n:]
fmt = {'F32': 'f', 'I64': 'q', 'BOOL': '?'}
out = [h.pop('__metadata__')['format']]
for name, t in sorted(h.items(), key=lambda kv: kv[1]['data_offsets']):
    s, e = t['data_offsets']
    count = (e - s) // struct.calcsize(fmt[t['dtype']])
    vals = struct.unpack('<%d%s' % (count, fmt[t['dtype']]), data[s:e])
    out.append('%s %s %s %s' % (name, t['dtype'], t['shape'], list(vals)))
print('|'.join(out))
)PY";
  const std::string script_path = (dir_ / "reader.py").string();
  std::ofstream(script_path) << script;
  const std::string cmd = "/usr/bin/python3 " + script_path + " " + path;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[256];
  while (std::fgets(buf, sizeof(buf), pipe) != nullptr) output += buf;
  ASSERT_EQ(::pclose(pipe), 0) << output;
  EXPECT_EQ(output,
            "pt|w F32 [2, 2] [1.5, -2.0, 0.25, 8.0]|n I64 [] [-42]|m BOOL [2] "
            "[True, False]\n");
}

}  // namespace
}  // namespace tessera

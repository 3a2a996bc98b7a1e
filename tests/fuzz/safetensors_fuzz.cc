// File: safetensors_fuzz.cc
// Fuzzes ParseSafetensors (models, checkpoints, adapters and exports). A buffer that parses
// must serialize again and parse to the same tensors.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/strings/string_view.h"
#include "core/model/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tessera::fuzz::Check;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> metadata;
  absl::StatusOr<tessera::ArrayRecord> record = tessera::ParseSafetensors(bytes, &metadata);
  tessera::fuzz::Report(record.status());
  if (!record.ok()) return 0;
  absl::StatusOr<std::string> again = tessera::SerializeSafetensors(*record, metadata);
  Check(again.ok(), "a parsed record serializes");
  std::map<std::string, std::string> metadata2;
  absl::StatusOr<tessera::ArrayRecord> record2 = tessera::ParseSafetensors(*again, &metadata2);
  Check(record2.ok(), "a serialized record parses");
  Check(metadata2 == metadata, "metadata round-trips");
  Check(record2->tensors.size() == record->tensors.size(), "tensor count round-trips");
  for (size_t i = 0; i < record->tensors.size(); ++i) {
    const tessera::Tensor& a = record->tensors[i];
    const tessera::Tensor& b = record2->tensors[i];
    Check(a.name() == b.name() && a.dtype() == b.dtype() && a.shape() == b.shape() &&
              a.data() == b.data(),
          "tensors round-trip");
  }
  return 0;
}

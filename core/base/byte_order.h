// File: byte_order.h
// Unsigned integers in a fixed byte order: the one encoder and decoder behind the big-endian
// fields of the secagg transcripts, Shamir shares and PRG labels and the little-endian fields
// of safetensors, the PRG's words, the secagg update codec and the tensor-stream digest.
//
// Example:
//   std::string out;
//   AppendBigEndian(out, 0x01020304, 4);     // out == "\x01\x02\x03\x04"
//   AppendLittleEndian(out, 0x0102, 8);      // then "\x02\x01\0\0\0\0\0\0"
//   LoadBigEndian(out.data(), 4);            // 0x01020304
#ifndef TESSERA_CORE_BASE_BYTE_ORDER_H_
#define TESSERA_CORE_BASE_BYTE_ORDER_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace tessera {

// Appends the low `bytes` bytes of `v`, most significant first. Widths above 8 are padded with
// leading zero bytes (`v` has only 8), so every width is well defined.
inline void AppendBigEndian(std::string& out, uint64_t v, size_t bytes) {
  for (size_t i = bytes; i-- > 0;) {
    out.push_back(i < 8 ? static_cast<char>((v >> (8 * i)) & 0xFF) : '\0');
  }
}

// Appends the low `bytes` bytes of `v`, least significant first. Widths above 8 are padded with
// trailing zero bytes.
inline void AppendLittleEndian(std::string& out, uint64_t v, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) {
    out.push_back(i < 8 ? static_cast<char>((v >> (8 * i)) & 0xFF) : '\0');
  }
}

// The unsigned integer in the `bytes` bytes at `p`, most significant first. REQUIRES: `bytes`
// is at most 8 and `p` holds that many bytes.
inline uint64_t LoadBigEndian(const void* p, size_t bytes) {
  const auto* b = static_cast<const unsigned char*>(p);
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v = (v << 8) | b[i];
  return v;
}

// The unsigned integer in the `bytes` bytes at `p`, least significant first. REQUIRES: `bytes`
// is at most 8 and `p` holds that many bytes.
inline uint64_t LoadLittleEndian(const void* p, size_t bytes) {
  const auto* b = static_cast<const unsigned char*>(p);
  uint64_t v = 0;
  for (size_t i = bytes; i-- > 0;) v = (v << 8) | b[i];
  return v;
}

}  // namespace tessera

#endif  // TESSERA_CORE_BASE_BYTE_ORDER_H_

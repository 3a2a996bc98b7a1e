// File: byte_order.h
// Appends an unsigned integer to a byte string in a fixed byte order: the one encoder behind the
// big-endian fields of the secagg transcripts, Shamir shares and PRG labels and the
// little-endian fields of safetensors, the secagg update codec and the tensor-stream digest.
//
// Example:
//   std::string out;
//   AppendBigEndian(out, 0x01020304, 4);     // out == "\x01\x02\x03\x04"
//   AppendLittleEndian(out, 0x0102, 8);      // then "\x02\x01\0\0\0\0\0\0"
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

}  // namespace tessera

#endif  // TESSERA_CORE_BASE_BYTE_ORDER_H_

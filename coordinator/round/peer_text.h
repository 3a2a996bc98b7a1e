// File: peer_text.h
// Strings that a peer chose (client names, devices, run and task ids, data-card text, the
// subject of a certificate the coordinator refused) are escaped and capped before they go
// into a log line or an error message, so they can neither forge a log line (a newline,
// a NUL, a terminal escape) nor blow up a message (a 100 KB name, a 20,000-character run
// id echoed into gRPC's size-limited grpc-message trailer). docs/wire_protocol.md.
#ifndef TESSERA_COORDINATOR_ROUND_PEER_TEXT_H_
#define TESSERA_COORDINATOR_ROUND_PEER_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace tessera::coordinator {

// Bytes of a peer's string kept in a log line or an error message.
inline constexpr size_t kMaxPeerTextBytes = 128;

// `text` made safe to log or echo: its first `max_bytes` bytes, with '\n', '\r', '\t', '"',
// '\'' and '\\' written as C escapes and every other byte outside printable ASCII (0x20 to
// 0x7E) as \xNN (a hex digit right after such an escape is escaped too, so the escape reads
// unambiguously); when bytes were cut, "...(N bytes)" follows, N the original length.
// The result is printable ASCII on one line.
// Example: PeerText("a\nb") == "a\\nb"; PeerText(std::string(300, 'x')) is 128 x's then
// "...(300 bytes)".
std::string PeerText(absl::string_view text, size_t max_bytes = kMaxPeerTextBytes);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_PEER_TEXT_H_

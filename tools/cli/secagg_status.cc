#include "tools/cli/secagg_status.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace tessera::cli {
namespace {

constexpr size_t kSessionPrefix = 8;  // characters of the session id shown
constexpr int kPhaseNameWidth = 17;   // the longest phase, "ConsistencyCheck", and a space

// "c3: bad signature" (the wire form) as "c3 (bad signature)".
std::string Rejection(absl::string_view entry) {
  const size_t colon = entry.find(": ");
  if (colon == absl::string_view::npos) return std::string(entry);
  return absl::StrCat(entry.substr(0, colon), " (", entry.substr(colon + 2), ")");
}

int Digits(uint32_t v) {
  int n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

// The phase's rejections as "c3 (bad signature), c4".
std::string Rejections(const wire::v1::SecAggPhaseStatus& p) {
  std::vector<std::string> rejected;
  for (const std::string& r : p.rejected()) rejected.push_back(Rejection(r));
  return absl::StrJoin(rejected, ", ");
}

std::string KAndT(const wire::v1::SecAggRoundStatus& s) {
  return absl::StrCat("k=", s.degree_k(), " t=", s.threshold_t());
}

}  // namespace

std::string SecAggConfigText(const wire::v1::SecureAggregationConfig& c) {
  if (!c.enabled()) return "";
  return absl::StrCat("  secure aggregation: on (dropout ≤ ", c.dropout_fraction(),
                      ", corrupt ≤ ", c.corrupt_fraction(), ", σ=", c.security_bits(), ")\n");
}

std::string SecAggDetailText(const wire::v1::SecAggRoundStatus& s) {
  std::vector<std::string> head = {
      absl::StrCat("state ", s.state().empty() ? "?" : s.state())};
  if (s.degree_k() > 0) head.push_back(KAndT(s));
  if (s.survivors() > 0) head.push_back(absl::StrCat("survivors ", s.survivors()));
  std::string out = absl::StrCat("  secure aggregation: ", absl::StrJoin(head, ", "));
  if (!s.session_id().empty()) {
    const bool cut = s.session_id().size() > kSessionPrefix;
    absl::StrAppend(&out, "   (session ", s.session_id().substr(0, kSessionPrefix),
                    cut ? "..." : "", ")");
  }
  out += "\n";

  // Counts aligned on the slash: " 9/10", "10/10", " 8/9 ".
  uint32_t widest = 0;
  for (const auto& p : s.phases()) widest = std::max({widest, p.expected(), p.responded()});
  const int width = Digits(widest);
  for (const auto& p : s.phases()) {
    std::string line = absl::StrFormat("    %-*s %*u/%-*u", kPhaseNameWidth, p.phase(),
                                       width, p.responded(), width, p.expected());
    if (p.dropped_size() > 0) {
      absl::StrAppend(&line, "  dropped: ", absl::StrJoin(p.dropped(), ", "));
    }
    if (p.rejected_size() > 0) absl::StrAppend(&line, "  rejected: ", Rejections(p));
    // No trailing blanks when nothing follows the counts.
    line.erase(line.find_last_not_of(' ') + 1);
    absl::StrAppend(&out, line, "\n");
  }
  if (!s.abort_reason().empty()) absl::StrAppend(&out, "    aborted: ", s.abort_reason(), "\n");
  return out;
}

std::string SecAggCompactText(const wire::v1::SecAggRoundStatus& s, uint32_t selected) {
  std::string out = absl::StrCat("  secure aggregation: ", KAndT(s), ", survivors ",
                                 s.survivors(), "/", selected, "\n");
  for (const auto& p : s.phases()) {
    if (p.dropped_size() > 0) {
      absl::StrAppend(&out, "    dropped in ", p.phase(), ": ", absl::StrJoin(p.dropped(), ", "),
                      "\n");
    }
    if (p.rejected_size() > 0) {
      absl::StrAppend(&out, "    rejected in ", p.phase(), ": ", Rejections(p), "\n");
    }
  }
  return out;
}

std::string SecAggRoundText(const wire::v1::RoundSummary& r) {
  if (!r.has_secagg()) return "";
  if (r.state() == wire::v1::ROUND_COMPLETED) return SecAggCompactText(r.secagg(), r.selected());
  return SecAggDetailText(r.secagg());
}

}  // namespace tessera::cli

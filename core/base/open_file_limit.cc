#include "core/base/open_file_limit.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace tessera {
namespace {

uint64_t FromRlim(rlim_t v) {
  return v == RLIM_INFINITY ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(v);
}

}  // namespace

absl::StatusOr<OpenFileLimit> GetOpenFileLimit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) {
    return absl::InternalError(absl::StrCat("getrlimit(RLIMIT_NOFILE): ", std::strerror(errno)));
  }
  return OpenFileLimit{FromRlim(r.rlim_cur), FromRlim(r.rlim_max)};
}

absl::StatusOr<OpenFileLimit> RaiseOpenFileSoftLimit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) {
    return absl::InternalError(absl::StrCat("getrlimit(RLIMIT_NOFILE): ", std::strerror(errno)));
  }
  if (r.rlim_cur != r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
      return absl::InternalError(absl::StrCat("setrlimit(RLIMIT_NOFILE) to the hard limit ",
                                              FromRlim(r.rlim_max), ": ",
                                              std::strerror(errno)));
    }
  }
  return GetOpenFileLimit();
}

}  // namespace tessera

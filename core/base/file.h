// Whole-file reads for configuration, PEM and model files.
#ifndef TESSERA_CORE_BASE_FILE_H_
#define TESSERA_CORE_BASE_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace tessera {

// What identifies one version of a file on disk, to notice that it changed (a rewrite, an
// atomic rename over it, or a truncation) without reading it.
struct FileStamp {
  bool operator==(const FileStamp&) const = default;
  int64_t mtime_ns = 0;
  int64_t size = -1;
  uint64_t inode = 0;
};

// The stamp of `path` now. NOT_FOUND "cannot read PATH" when it cannot be stat()ed.
absl::StatusOr<FileStamp> StatFile(const std::string& path);

// The bytes of `path`. NOT_FOUND "cannot read PATH" when it cannot be opened or read.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
// reader (a file watcher, a crash) sees the old file or the new one, never half of either;
// the file and then the folder are fsynced, so once it returns the new file survives a
// power loss.
// The file gets permission `mode` (e.g. 0600 for keys) from the start. Refuses to replace an
// existing file unless `replace`. Errors: ALREADY_EXISTS, or INTERNAL naming the path and
// errno's text.
absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes,
                                 unsigned mode, bool replace);

}  // namespace tessera

#endif  // TESSERA_CORE_BASE_FILE_H_

// Whole-file reads for configuration, PEM and model files.
#ifndef TESSERA_CORE_BASE_FILE_H_
#define TESSERA_CORE_BASE_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace tessera {

// The bytes of `path`. NOT_FOUND "cannot read PATH" when it cannot be opened or read.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace tessera

#endif  // TESSERA_CORE_BASE_FILE_H_

// File: status_macros.h
// TESSERA_RETURN_IF_ERROR and TESSERA_ASSIGN_OR_RETURN, shaped like absl's post-2026 macros
// (absl 20220623 has none), so migrating later is a rename.
//
// Example:
//   TESSERA_RETURN_IF_ERROR(db.Put(key, value));
//   TESSERA_ASSIGN_OR_RETURN(Tensor t, Tensor::Create(...));
#ifndef TESSERA_CORE_BASE_STATUS_MACROS_H_
#define TESSERA_CORE_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TESSERA_RETURN_IF_ERROR(expr)                     \
  do {                                                    \
    ::absl::Status tessera_status_ = (expr);              \
    if (!tessera_status_.ok()) return tessera_status_;    \
  } while (0)

#define TESSERA_STATUS_MACROS_CONCAT_INNER_(x, y) x##y
#define TESSERA_STATUS_MACROS_CONCAT_(x, y) TESSERA_STATUS_MACROS_CONCAT_INNER_(x, y)

#define TESSERA_ASSIGN_OR_RETURN(lhs, rexpr)                                      \
  TESSERA_ASSIGN_OR_RETURN_IMPL_(                                                 \
      TESSERA_STATUS_MACROS_CONCAT_(tessera_statusor_, __LINE__), lhs, rexpr)

#define TESSERA_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()

#endif  // TESSERA_CORE_BASE_STATUS_MACROS_H_

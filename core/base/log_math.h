// File: log_math.h
// Arithmetic on natural logarithms of probabilities, shared by the DP accountant
// (privacy/dp/rdp_accountant.cc) and secure aggregation's failure bounds
// (privacy/secagg/secagg_params.cc). -infinity stands for log(0).
#ifndef TESSERA_CORE_BASE_LOG_MATH_H_
#define TESSERA_CORE_BASE_LOG_MATH_H_

#include <cstdint>

namespace tessera {

// log(exp(a) + exp(b)) without overflow or underflow; LogAdd(-inf, b) == b.
double LogAdd(double a, double b);

// ln C(n, k), the log of the binomial coefficient; -infinity when k > n. Exact integers up to
// 2^53 (n + 1 is converted to double). Thread-safe (lgamma_r; glibc's lgamma writes the global
// signgam).
double LogBinomial(uint64_t n, uint64_t k);

}  // namespace tessera

#endif  // TESSERA_CORE_BASE_LOG_MATH_H_

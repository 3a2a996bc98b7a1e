// File: python_repr.h
// Python's repr() of the two scalars whose text is not obvious: floats (the shortest digits
// that round-trip, in Python's layout) and strings (quotes chosen as Python chooses them,
// escapes for the characters str.isprintable() rejects). Value::Repr and Str, and tojson's
// numbers, are built on them.
#ifndef TESSERA_CLIENT_LM_TEXT_JINJA_PYTHON_REPR_H_
#define TESSERA_CLIENT_LM_TEXT_JINJA_PYTHON_REPR_H_

#include <string>

#include "absl/strings/string_view.h"

namespace tessera::lm::jinja {

// Python's repr() of a float ("1.0", "0.1", "1e-05", "1e+16", "inf", "nan").
std::string PyFloatRepr(double d);

// Python's repr() of a str: 'text' (or "text" when it holds ' and no "), with \\, the quote,
// \n, \r, \t and non-printable code points (\xNN, \uNNNN) escaped.
std::string PyStringRepr(absl::string_view s);

}  // namespace tessera::lm::jinja

#endif  // TESSERA_CLIENT_LM_TEXT_JINJA_PYTHON_REPR_H_

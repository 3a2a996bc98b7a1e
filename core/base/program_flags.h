// File: program_flags.h
// `--help` for the small programs whose flags are absl flags (the benchmarks). absl 20220623
// answers `--help` with exit code 1, lists only flags of a file named like the program, and
// prints "SetProgramUsageMessage() never called" when a program did not set one; a program
// here prints its usage and every flag it defines, and exits 0.
#ifndef TESSERA_CORE_BASE_PROGRAM_FLAGS_H_
#define TESSERA_CORE_BASE_PROGRAM_FLAGS_H_

#include <vector>

#include "absl/strings/string_view.h"

namespace tessera {

// True when an argument before a "--" asks for help: --help, -help, -h, --helpfull,
// --helpshort (absl's spellings).
bool HelpRequested(int argc, char** argv);

// Prints "Usage: NAME [flags]", a blank line and `description` to stdout; NAME is argv0's
// base name.
void PrintUsage(const char* argv0, absl::string_view description);

// absl::ParseCommandLine with `description` as the usage message, except that a help
// request (HelpRequested) prints PrintUsage, then each flag the program defines (outside
// absl itself) with its help and default, and exits 0. Returns the positional arguments
// (argv[0] first), as absl::ParseCommandLine does; a malformed or unknown flag still exits 1
// with absl's message.
std::vector<char*> ParseProgramFlags(int argc, char** argv, absl::string_view description);

}  // namespace tessera

#endif  // TESSERA_CORE_BASE_PROGRAM_FLAGS_H_

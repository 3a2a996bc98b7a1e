#include "core/base/program_flags.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"

namespace tessera {

bool HelpRequested(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") return false;
    if (arg == "--help" || arg == "-help" || arg == "-h" || arg == "--helpfull" ||
        arg == "--helpshort") {
      return true;
    }
  }
  return false;
}

void PrintUsage(const char* argv0, absl::string_view description) {
  const char* slash = std::strrchr(argv0, '/');
  const char* name = slash != nullptr ? slash + 1 : argv0;
  std::printf("Usage: %s [flags]\n\n%.*s\n", name, static_cast<int>(description.size()),
              description.data());
}

std::vector<char*> ParseProgramFlags(int argc, char** argv, absl::string_view description) {
  if (HelpRequested(argc, argv)) {
    PrintUsage(argv[0], description);
    std::vector<const absl::CommandLineFlag*> flags;
    for (const auto& [name, flag] : absl::GetAllFlags()) {
      if (!absl::StrContains(flag->Filename(), "absl/")) flags.push_back(flag);
    }
    std::sort(flags.begin(), flags.end(),
              [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
    if (!flags.empty()) std::printf("\nFlags:\n");
    for (const absl::CommandLineFlag* flag : flags) {
      const std::string name(flag->Name());
      std::printf("  --%s  %s (default: %s)\n", name.c_str(), flag->Help().c_str(),
                  flag->DefaultValue().c_str());
    }
    std::fflush(stdout);
    std::exit(0);
  }
  absl::SetProgramUsageMessage(description);
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace tessera

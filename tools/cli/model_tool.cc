// File: model_tool.cc
// Starting the tessera-model tool: the CLI itself never links LibTorch.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "privacy/crypto/random.h"
#include "tools/cli/commands.h"

namespace tessera::cli {

std::string TempPath(absl::string_view suffix) {
  return (std::filesystem::temp_directory_path() /
          absl::StrCat("tessera-", crypto::RandomHexId(6), suffix))
      .string();
}

int RunModelTool(const std::vector<std::string>& args) {
  std::string tool = "tessera-model";
  if (const char* env = std::getenv("TESSERA_MODEL_TOOL"); env != nullptr && *env) {
    tool = env;
  } else {
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
      auto sibling = self.parent_path() / "tessera-model";
      if (std::filesystem::exists(sibling)) tool = sibling.string();
    }
  }
  std::vector<std::string> all = {tool};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    std::cerr << "tessera: cannot start " << tool << "\n";
    return 1;
  }
  if (pid == 0) {
    // The tool's progress lines would mix into our (possibly --json) stdout; its errors go
    // to stderr as usual.
    const int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, STDOUT_FILENO);
    execvp(argv[0], argv.data());
    std::cerr << "tessera: cannot run " << tool << " (set TESSERA_MODEL_TOOL)\n";
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace tessera::cli

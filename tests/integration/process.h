// Test helpers: child processes, PKI and temp dirs for multi-process integration tests.
#ifndef TESSERA_TESTS_INTEGRATION_PROCESS_H_
#define TESSERA_TESTS_INTEGRATION_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace tessera::testing_support {

// A child process with stdout+stderr redirected to `log_path`; killed (SIGKILL) on
// destruction if still running.
class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_path,
          std::vector<std::string> env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `signal` and reaps the child; returns its wait status.
  int Kill(int signal);
  // Waits up to `seconds` for the child to exit; returns the exit code, or -1 on timeout.
  int Wait(double seconds);
  bool running();
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string log_path_;
};

// Runs a command to completion; returns its exit code and fills `output` (stdout+stderr).
int RunCommand(const std::vector<std::string>& argv, std::string* output, double timeout_s = 300);

std::string BinDir();     // build/bin
std::string SourceDir();  // the repository root
std::string MakeTempDir(const std::string& prefix);
// scripts/make_pki.sh DIR clients...; returns false on failure.
bool MakePki(const std::string& dir, const std::vector<std::string>& clients);
std::string ReadFileOrEmpty(const std::string& path);
// Polls for a non-empty port file written by tessera-coordinator --port-file.
int WaitForPort(const std::string& port_file, double seconds);

// A tessera-coordinator process with mTLS on 127.0.0.1, PKI in DIR/pki (MakePki), state in
// DIR/state, log in DIR/coordinator.log. `*port`: the port to listen on (0: any), set to the
// bound port. `extra_args` go after the others. Returns nullptr if no port appeared within
// 30 s.
std::unique_ptr<Process> StartCoordinator(const std::string& dir, int* port,
                                          const std::vector<std::string>& extra_args = {});

// Runs the operator CLI `tessera` with DIR/pki/operator.* against 127.0.0.1:port; returns
// its exit code and fills `out`.
int RunOperatorCli(const std::string& dir, int port, const std::vector<std::string>& args,
                   std::string* out);

// Polls `tessera clients list` (RunOperatorCli) every 200 ms, up to `seconds`, until it names
// every one of `names` (a name followed by a digit does not count: org-1 is not org-10);
// true once it does. `listed` gets the last listing.
bool AwaitClientsListed(const std::string& dir, int port, const std::vector<std::string>& names,
                        double seconds, std::string* listed);

// The last line of `out` that starts with '{' (the CLI's --json output; logs may precede
// it), or "" if none.
std::string LastJsonLine(const std::string& out);

}  // namespace tessera::testing_support

#endif  // TESSERA_TESTS_INTEGRATION_PROCESS_H_

#include "tests/integration/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace tessera::testing_support {

Process::Process(std::vector<std::string> argv, std::string log_path,
                 std::vector<std::string> env)
    : log_path_(std::move(log_path)) {
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    for (auto& e : env) putenv(e.data());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

Process::~Process() {
  if (pid_ > 0 && !reaped_) Kill(SIGKILL);
}

int Process::Kill(int signal) {
  if (pid_ <= 0 || reaped_) return status_;
  kill(pid_, signal);
  waitpid(pid_, &status_, 0);
  reaped_ = true;
  return status_;
}

int Process::Wait(double seconds) {
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  while (!reaped_) {
    pid_t r = waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      break;
    }
    if (std::chrono::steady_clock::now() > until) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

bool Process::running() {
  if (reaped_) return false;
  if (waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
  return !reaped_;
}

std::string Process::Log() const { return ReadFileOrEmpty(log_path_); }

int RunCommand(const std::vector<std::string>& argv, std::string* output, double timeout_s) {
  const std::string dir = MakeTempDir("cmd");
  const std::string log = dir + "/out.log";
  int rc;
  {
    Process p(argv, log);
    rc = p.Wait(timeout_s);
    if (rc < 0) p.Kill(SIGKILL);
  }
  if (output != nullptr) *output = ReadFileOrEmpty(log);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}

std::string BinDir() { return TESSERA_BIN_DIR; }
std::string SourceDir() { return TESSERA_SOURCE_DIR; }

std::string MakeTempDir(const std::string& prefix) {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             ("tessera-" + prefix + "-" + std::to_string(rd()) + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

bool MakePki(const std::string& dir, const std::vector<std::string>& clients) {
  std::vector<std::string> argv = {"/bin/bash", SourceDir() + "/scripts/make_pki.sh", dir};
  argv.insert(argv.end(), clients.begin(), clients.end());
  std::string out;
  return RunCommand(argv, &out, 120) == 0;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int WaitForPort(const std::string& port_file, double seconds) {
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  while (std::chrono::steady_clock::now() < until) {
    std::string s = ReadFileOrEmpty(port_file);
    if (!s.empty()) return std::atoi(s.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

std::unique_ptr<Process> StartCoordinator(const std::string& dir, int* port,
                                          const std::vector<std::string>& extra_args) {
  std::filesystem::remove(dir + "/port");
  const std::string pki = dir + "/pki/";
  std::vector<std::string> argv = {BinDir() + "/tessera-coordinator", "--listen",
                                   "127.0.0.1:" + std::to_string(*port), "--port-file",
                                   dir + "/port", "--state-dir", dir + "/state", "--ca",
                                   pki + "ca.pem", "--cert", pki + "coordinator.pem", "--key",
                                   pki + "coordinator.key"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  // A restart listens on the port of the coordinator it replaces. While that one was down,
  // the kernel may have given the port to an outgoing connection as its source port (a CLI
  // call, another test's client); the bind then fails ("cannot listen on") until that
  // connection closes, so a restart that fails that way is tried again, up to 10 times.
  for (int attempt = 0;; ++attempt) {
    auto p = std::make_unique<Process>(argv, dir + "/coordinator.log");
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
      const std::string s = ReadFileOrEmpty(dir + "/port");
      if (!s.empty()) {
        *port = std::atoi(s.c_str());
        return *port > 0 ? std::move(p) : nullptr;
      }
      if (!p->running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const bool retry = *port != 0 && attempt < 9 && !p->running() &&
                       p->Log().find("cannot listen on") != std::string::npos;
    if (!retry) return nullptr;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

int RunOperatorCli(const std::string& dir, int port, const std::vector<std::string>& args,
                   std::string* out) {
  const std::string pki = dir + "/pki/";
  std::vector<std::string> argv = {BinDir() + "/tessera", "--coordinator",
                                   "127.0.0.1:" + std::to_string(port), "--ca", pki + "ca.pem",
                                   "--cert", pki + "operator.pem", "--key",
                                   pki + "operator.key"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, out, 600);
}

bool AwaitClientsListed(const std::string& dir, int port, const std::vector<std::string>& names,
                        double seconds, std::string* listed) {
  auto named = [listed](const std::string& name) {
    for (size_t at = listed->find(name); at != std::string::npos;
         at = listed->find(name, at + 1)) {
      const size_t end = at + name.size();
      if (end == listed->size() || !std::isdigit(static_cast<unsigned char>((*listed)[end]))) {
        return true;
      }
    }
    return false;
  };
  for (int waited_ms = 0; waited_ms < seconds * 1000; waited_ms += 200) {
    listed->clear();
    if (RunOperatorCli(dir, port, {"clients", "list"}, listed) == 0 &&
        std::all_of(names.begin(), names.end(), named)) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

std::string LastJsonLine(const std::string& out) {
  std::string best;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    if (out[start] == '{') best = out.substr(start, end - start);
    start = end + 1;
  }
  return best;
}

}  // namespace tessera::testing_support

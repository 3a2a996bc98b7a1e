// tessera-model: model programs and federated weights.
//   tessera-model init --architecture niid_cnn --seed 1 --out w.safetensors
//   tessera-model import --torchscript model.pt --out w.safetensors
//   tessera-model export-torchscript --torchscript base.pt --weights w.safetensors --out o.pt
//   tessera-model info FILE [--json]
//   tessera-model bench-train --architecture niid_cnn --batch-size 64 --seconds 5 [--data DIR]
// Exit status 0 on success; 1 with a one-line error on stderr otherwise.
#include <cstdint>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "client/training/local_model.h"
#include "core/base/version.h"
#include "tools/model/bench_train.h"
#include "tools/model/model_commands.h"

namespace {

int Fail(const absl::Status& status) {
  std::string message(status.message());
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::cerr << "tessera-model: error: " << message << "\n";
  return 1;
}

int Report(const absl::Status& status, const std::string& done) {
  if (!status.ok()) return Fail(status);
  if (!done.empty()) std::cout << done << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tessera-model: model programs (TorchScript) and federated weights "
               "(safetensors)."};
  app.set_version_flag("--version", std::string(tessera::kVersion));
  app.require_subcommand(1);
  int rc = 0;

  std::string architecture, out, torchscript, weights, file;
  uint64_t seed = 0;
  bool json = false;

  const std::string known = absl::StrJoin(tessera::BuiltinArchitectures(), ", ");
  CLI::App* init = app.add_subcommand("init", "write a built-in architecture's initial weights");
  init->add_option("--architecture", architecture, "one of: " + known)->required();
  init->add_option("--seed", seed, "initialization seed")->required();
  init->add_option("--out", out, "output .safetensors file")->required();
  init->callback([&] {
    rc = Report(tessera::InitModel(architecture, seed, out), "wrote " + out);
  });

  CLI::App* import =
      app.add_subcommand("import", "write the weights of a TorchScript file as safetensors");
  import->add_option("--torchscript", torchscript, "TorchScript file (.pt)")->required();
  import->add_option("--out", out, "output .safetensors file")->required();
  import->callback([&] {
    rc = Report(tessera::ImportTorchScript(torchscript, out), "wrote " + out);
  });

  CLI::App* exp = app.add_subcommand(
      "export-torchscript", "save a TorchScript program with federated weights");
  exp->add_option("--torchscript", torchscript, "base TorchScript program (.pt)")->required();
  exp->add_option("--weights", weights, "weights (.safetensors)")->required();
  exp->add_option("--out", out, "output TorchScript file (.pt)")->required();
  exp->callback([&] {
    rc = Report(tessera::ExportTorchScript(torchscript, weights, out), "wrote " + out);
  });

  CLI::App* info = app.add_subcommand("info", "list the tensors of a .safetensors or .pt");
  info->add_option("file", file, "model file")->required();
  info->add_flag("--json", json, "machine-readable output");
  info->callback([&] {
    absl::StatusOr<tessera::ModelFileInfo> i = tessera::ReadModelFileInfo(file);
    if (!i.ok()) {
      rc = Fail(i.status());
      return;
    }
    std::cout << tessera::FormatModelFileInfo(*i, json);
  });

  tessera::BenchTrainOptions bench;
  CLI::App* bt = app.add_subcommand("bench-train", "measure local training images/s");
  bt->add_option("--architecture", bench.architecture, "one of: " + known)
      ->capture_default_str();
  bt->add_option("--batch-size", bench.batch_size, "examples per step")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  bt->add_option("--seconds", bench.seconds, "measured time")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  bt->add_option("--data", bench.data_dir, "IDX directory (train split); default synthetic");
  bt->add_option("--examples", bench.num_examples, "examples to load or generate")
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000'000));
  bt->add_option("--examples-per-call", bench.examples_per_call,
                 "train one epoch per call on N-example slices, as a client does each round "
                 "(0 = steps over all the data)")
      ->capture_default_str();
  bt->add_option("--threads", bench.threads, "LibTorch threads (0 = default)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  bt->add_option("--device", bench.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  bt->add_option("--lr", bench.learning_rate, "SGD learning rate")->capture_default_str();
  bt->add_flag("--dp-sgd", bench.dp_sgd,
               "record-level DP-SGD (expected batch = --batch-size, z = 1, C = 1)");
  bt->add_flag("--json", json, "machine-readable output");
  bt->callback([&] {
    absl::StatusOr<tessera::BenchTrainResult> r = tessera::BenchTrain(bench);
    if (!r.ok()) {
      rc = Fail(r.status());
      return;
    }
    std::cout << tessera::FormatBenchTrainResult(*r, json);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "tessera-model: error: " << e.what() << " (see --help)\n";
    return 1;
  }
  return rc;
}

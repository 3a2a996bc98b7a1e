// tessera-model: model programs and federated weights.
//   tessera-model init --architecture niid_cnn --seed 1 --out w.safetensors
//   tessera-model import --torchscript model.pt --out w.safetensors
//   tessera-model export-torchscript --torchscript base.pt --weights w.safetensors --out o.pt
//   tessera-model info FILE [--json]
//   tessera-model bench-train --architecture niid_cnn --batch-size 64 --seconds 5 [--data DIR]
//   tessera-model bench-lm --preset 100m --threads 2 --steps 5 [--full-finetune] [--json]
// Language models (docs/llm.md):
//   tessera-model lm-hash --checkpoint DIR
//   tessera-model lora-init --checkpoint DIR --rank 8 --alpha 16 --targets q_proj,v_proj --out F
//   tessera-model generate --checkpoint DIR [--adapter DIR|FILE] --prompt TEXT [--chat]
//   tessera-model lm-export --checkpoint DIR --adapter FILE --peft-out DIR [--merged-out DIR]
//   tessera-model pretrain --corpus a.jsonl,b.jsonl --out DIR
// Exit status 0 on success; 1 with a one-line error on stderr otherwise.
#include <cstdint>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "client/training/local_model.h"
#include "client/training/memory_policy.h"
#include "core/base/version.h"
#include "tools/model/bench_lm.h"
#include "tools/model/bench_train.h"
#include "tools/model/lm_commands.h"
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
  tessera::UseTrainingMallocPolicy();  // client/training/memory_policy.h
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

  tessera::BenchLmOptions bench_lm;
  CLI::App* blm = app.add_subcommand(
      "bench-lm", "measure language-model fine-tuning tokens/s, bytes per round and memory");
  blm->add_option("--preset", bench_lm.preset, "tiny, 100m, smollm2-135m or llama-3.2-1b")
      ->capture_default_str();
  blm->add_option("--hidden", bench_lm.hidden_size, "override the preset's hidden size");
  blm->add_option("--intermediate", bench_lm.intermediate_size, "... intermediate size");
  blm->add_option("--layers", bench_lm.num_layers, "... decoder layers");
  blm->add_option("--heads", bench_lm.num_heads, "... attention heads");
  blm->add_option("--kv-heads", bench_lm.num_kv_heads, "... key/value heads");
  blm->add_option("--vocab", bench_lm.vocab_size, "... vocabulary size");
  blm->add_option("--seq-len", bench_lm.seq_len, "tokens per sequence")->capture_default_str()
      ->check(CLI::Range(2, 1 << 20));
  blm->add_option("--batch-size", bench_lm.batch_size, "sequences per step")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  blm->add_option("--warmup-steps", bench_lm.warmup_steps, "untimed steps first")
      ->capture_default_str();
  blm->add_option("--steps", bench_lm.steps, "timed steps")->capture_default_str()
      ->check(CLI::Range(1, 1 << 30));
  blm->add_option("--lr", bench_lm.learning_rate, "AdamW learning rate")->capture_default_str();
  blm->add_option("--rank", bench_lm.lora.rank, "LoRA rank r")->capture_default_str()
      ->check(CLI::Range(1, 1024));
  blm->add_option("--alpha", bench_lm.lora.alpha, "LoRA alpha")->capture_default_str();
  blm->add_option("--targets", bench_lm.lora.target_modules, "adapted projections")
      ->delimiter(',')->capture_default_str();
  blm->add_flag("--full-finetune", bench_lm.full_finetune, "train every weight, no LoRA");
  blm->add_option("--threads", bench_lm.threads, "LibTorch threads (0 = default)")
      ->capture_default_str()->check(CLI::Range(0, 1024));
  blm->add_option("--device", bench_lm.device, "auto, cpu, cuda or cuda:N")
      ->capture_default_str();
  blm->add_option("--dtype", bench_lm.dtype, "auto, float32, bfloat16 or float16")
      ->capture_default_str();
  blm->add_option("--seed", bench_lm.seed, "weights and tokens")->capture_default_str();
  blm->add_flag("--sizes-only", bench_lm.sizes_only,
                "parameters and bytes per round only (no model is built)");
  blm->add_flag("--json", json, "machine-readable output");
  blm->callback([&] {
    absl::StatusOr<tessera::BenchLmResult> r = tessera::BenchLm(bench_lm);
    rc = r.ok() ? (std::cout << tessera::FormatBenchLmResult(*r, json), 0) : Fail(r.status());
  });

  // ---- language models ----
  std::string checkpoint, run_config;
  tessera::lm::LoraConfig lora;
  tessera::lm::TextDataOptions text;
  // --config RUN.toml: the run's [model.causal_lm] LoRA and text settings replace the flags.
  auto add_config = [&run_config](CLI::App* cmd) {
    cmd->add_option("--config", run_config,
                    "a run configuration: take LoRA and text settings from its "
                    "[model.causal_lm]");
  };
  auto apply_config = [&]() -> absl::Status {
    if (run_config.empty()) return absl::OkStatus();
    absl::StatusOr<tessera::LmRunSettings> s = tessera::LmSettingsFromRunConfig(run_config);
    if (!s.ok()) return s.status();
    lora = s->lora;
    text = s->text;
    return absl::OkStatus();
  };
  auto add_lora = [&lora](CLI::App* cmd) {
    cmd->add_option("--rank", lora.rank, "LoRA rank r")->capture_default_str()
        ->check(CLI::Range(1, 1024));
    cmd->add_option("--alpha", lora.alpha, "LoRA alpha (update scaled by alpha / r)")
        ->capture_default_str();
    cmd->add_option("--dropout", lora.dropout, "LoRA dropout")->capture_default_str();
    cmd->add_option("--targets", lora.target_modules,
                    "adapted projections: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,"
                    "down_proj")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_flag("--freeze-a", lora.freeze_a, "FFA-LoRA: A frozen at its seeded init");
    cmd->add_option("--init-seed", lora.init_seed, "seed of A's initialization")
        ->capture_default_str();
  };

  CLI::App* lm_hash = app.add_subcommand(
      "lm-hash", "print a checkpoint's identity (model.causal_lm.base_sha256)");
  lm_hash->add_option("--checkpoint", checkpoint, "Hugging Face model directory")->required();
  lm_hash->callback([&] {
    absl::StatusOr<std::string> h = tessera::LmHash(checkpoint);
    rc = h.ok() ? (std::cout << *h << "\n", 0) : Fail(h.status());
  });

  CLI::App* lora_init =
      app.add_subcommand("lora-init", "write a run's initial LoRA adapter (safetensors)");
  lora_init->add_option("--checkpoint", checkpoint, "base model directory")->required();
  lora_init->add_option("--out", out, "output .safetensors file")->required();
  add_lora(lora_init);
  add_config(lora_init);
  lora_init->callback([&] {
    absl::Status s = apply_config();
    rc = Report(s.ok() ? tessera::LoraInit(checkpoint, lora, out) : s, "wrote " + out);
  });

  tessera::GenerateCommandOptions gen;
  CLI::App* generate = app.add_subcommand("generate", "continue a prompt with a model");
  generate->add_option("--checkpoint", gen.checkpoint, "base model directory")->required();
  generate->add_option("--adapter", gen.adapter,
                       "PEFT adapter directory or a run's adapter .safetensors");
  generate->add_option("--prompt", gen.prompt, "text to continue")->required();
  generate->add_flag("--chat", gen.chat,
                     "send --prompt as a user turn through the checkpoint's chat template and "
                     "print only the reply");
  generate->add_option("--max-new-tokens", gen.max_new_tokens, "tokens to generate")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  generate->add_option("--temperature", gen.temperature, "0 = greedy")->capture_default_str();
  generate->add_option("--top-p", gen.top_p, "nucleus sampling mass")->capture_default_str();
  generate->add_option("--seed", gen.seed, "sampling seed")->capture_default_str();
  generate->add_option("--device", gen.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  add_lora(generate);
  add_config(generate);
  generate->callback([&] {
    if (absl::Status s = apply_config(); !s.ok()) {
      rc = Fail(s);
      return;
    }
    gen.lora = lora;
    absl::StatusOr<std::string> text = tessera::Generate(gen);
    rc = text.ok() ? (std::cout << (gen.chat ? "" : gen.prompt) << *text << "\n", 0)
                   : Fail(text.status());
  });

  tessera::ExportCommandOptions lm_export;
  CLI::App* lmx = app.add_subcommand(
      "lm-export", "write a run's adapter as a PEFT directory and/or merged weights");
  lmx->add_option("--checkpoint", lm_export.checkpoint, "base model directory")->required();
  lmx->add_option("--adapter", lm_export.adapter, "the run's adapter (.safetensors)")
      ->required();
  lmx->add_option("--peft-out", lm_export.peft_out, "PEFT adapter directory to write");
  lmx->add_option("--merged-out", lm_export.merged_out,
                  "full checkpoint directory with the adapter merged");
  lmx->add_option("--base-name", lm_export.base_name,
                  "base_model_name_or_path for adapter_config.json (e.g. the hub id)");
  add_lora(lmx);
  add_config(lmx);
  lmx->callback([&] {
    absl::Status s = apply_config();
    lm_export.lora = lora;
    rc = Report(s.ok() ? tessera::ExportLm(lm_export) : s, "exported");
  });

  tessera::EvalCommandOptions ev;
  CLI::App* lm_eval = app.add_subcommand(
      "lm-eval", "held-out loss and perplexity of a model on a JSONL file (split as a client)");
  lm_eval->add_option("--checkpoint", ev.checkpoint, "base model directory")->required();
  lm_eval->add_option("--adapter", ev.adapter,
                      "PEFT adapter directory or a run's adapter .safetensors");
  lm_eval->add_option("--data", ev.data, "JSONL file")->required();
  lm_eval->add_option("--device", ev.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  add_lora(lm_eval);
  add_config(lm_eval);
  lm_eval->add_flag("--json", json, "machine-readable output");
  lm_eval->callback([&] {
    if (absl::Status s = apply_config(); !s.ok()) {
      rc = Fail(s);
      return;
    }
    ev.lora = lora;
    ev.text = text;
    absl::StatusOr<tessera::lm::LmEvalResult> r = tessera::EvalLm(ev);
    if (!r.ok()) {
      rc = Fail(r.status());
      return;
    }
    if (json) {
      std::cout << "{\"loss\": " << r->loss << ", \"perplexity\": " << r->perplexity
                << ", \"accuracy\": " << r->accuracy << ", \"tokens\": " << r->target_tokens
                << "}\n";
    } else {
      std::cout << "held-out loss " << r->loss << ", perplexity " << r->perplexity
                << ", next-token accuracy " << r->accuracy << " over " << r->target_tokens
                << " tokens\n";
    }
  });

  tessera::PretrainOptions pre;
  CLI::App* pretrain = app.add_subcommand(
      "pretrain", "pretrain a tiny Llama-architecture base model (demos)");
  pretrain->add_option("--corpus", pre.corpus, "JSONL files with \"text\" records")
      ->required()->delimiter(',');
  pretrain->add_option("--out", pre.out, "output checkpoint directory")->required();
  pretrain->add_option("--vocab-size", pre.vocab_size, "BPE vocabulary")->capture_default_str()
      ->check(CLI::Range(300, 1 << 18));
  pretrain->add_option("--hidden-size", pre.hidden_size, "")->capture_default_str();
  pretrain->add_option("--intermediate-size", pre.intermediate_size, "")->capture_default_str();
  pretrain->add_option("--layers", pre.num_layers, "")->capture_default_str();
  pretrain->add_option("--heads", pre.num_heads, "")->capture_default_str();
  pretrain->add_option("--kv-heads", pre.num_kv_heads, "")->capture_default_str();
  pretrain->add_option("--max-seq-length", pre.max_seq_length, "")->capture_default_str();
  pretrain->add_option("--steps", pre.steps, "")->capture_default_str();
  pretrain->add_option("--batch-size", pre.batch_size, "")->capture_default_str();
  pretrain->add_option("--lr", pre.learning_rate, "")->capture_default_str();
  pretrain->add_option("--seed", pre.seed, "")->capture_default_str();
  pretrain->add_option("--device", pre.device, "auto, cpu, cuda or cuda:N")
      ->capture_default_str();
  pretrain->callback([&] {
    rc = Report(tessera::Pretrain(pre), "wrote " + pre.out);
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

#include "tools/model/lm_commands.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/lm/checkpoint/hf_checkpoint.h"
#include "client/lm/checkpoint/model_config.h"
#include "client/lm/text/chat_template.h"
#include "client/lm/text/text_data.h"
#include "client/lm/tokenizer/bpe_trainer.h"
#include "client/lm/tokenizer/tokenizer.h"
#include "client/lm/transformer/causal_lm.h"
#include "client/runtime/lm_workload.h"
#include "core/config/run_config.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "core/base/version.h"
#include "core/model/safetensors.h"

namespace tessera {
namespace {

// The files of a checkpoint that are not weights or config.json: copied next to merged
// weights so that the result is a complete model directory.
constexpr const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer.model",
                                           "tokenizer_config.json", "special_tokens_map.json",
                                           "generation_config.json"};

std::string LoraSummary(const lm::LoraConfig& lora) {
  return absl::StrCat("r=", lora.rank, " alpha=", lora.alpha, " targets=",
                      absl::StrJoin(lora.target_modules, ","),
                      lora.freeze_a ? " (FFA-LoRA: A frozen)" : "");
}

// Loads the base with `lora` and sets the adapter from a PEFT directory or a run's
// .safetensors (A regenerated from the seed when the file has only B).
absl::StatusOr<std::unique_ptr<lm::CausalLm>> LoadAdapted(const std::string& checkpoint,
                                                          const std::string& adapter,
                                                          lm::LoraConfig lora,
                                                          const std::string& device) {
  lm::LoadOptions load;
  load.device = device;
  if (adapter.empty()) return lm::CausalLm::Load(checkpoint, std::nullopt, load);
  TESSERA_ASSIGN_OR_RETURN(lm::HfCheckpoint base, lm::ReadHfCheckpoint(checkpoint));
  ArrayRecord tensors;
  if (std::filesystem::is_directory(adapter)) {
    TESSERA_ASSIGN_OR_RETURN(lm::PeftAdapter peft, lm::ReadPeftAdapter(adapter, base.config));
    lora = peft.lora;
    tensors = std::move(peft.adapter);
  } else {
    TESSERA_ASSIGN_OR_RETURN(tensors, ReadSafetensorsFile(adapter));
  }
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<lm::CausalLm> model,
                           lm::CausalLm::FromCheckpoint(base, lora, load));
  TESSERA_RETURN_IF_ERROR(model->SetAdapter(tensors));
  return model;
}

absl::Status WriteJson(const std::string& path, const nlohmann::json& j) {
  return WriteFileAtomically(path, j.dump(2) + "\n", 0644, /*replace=*/true);
}

}  // namespace

absl::StatusOr<LmRunSettings> LmSettingsFromRunConfig(const std::string& path) {
  TESSERA_ASSIGN_OR_RETURN(RunConfigFile file, LoadRunConfigFile(path));
  const wire::v1::ModelSpec& spec = file.config.model();
  if (!spec.has_causal_lm()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the run has no [model.causal_lm] (not a language-model run)"));
  }
  LmRunSettings out;
  out.lora = LoraFromSpec(spec.causal_lm().lora());
  out.text = TextOptionsFromSpec(spec.causal_lm().text());
  return out;
}

absl::StatusOr<lm::LmEvalResult> EvalLm(const EvalCommandOptions& options) {
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<lm::Tokenizer> tokenizer,
                           lm::LoadTokenizer(options.checkpoint));
  TESSERA_ASSIGN_OR_RETURN(
      std::unique_ptr<lm::CausalLm> model,
      LoadAdapted(options.checkpoint, options.adapter, options.lora, options.device));
  lm::TextDataOptions text = options.text;
  text.split_seed = LmWorkloadOptions{}.split_seed;  // the clients' split
  TESSERA_ASSIGN_OR_RETURN(lm::TextData data, lm::LoadTextData(options.data, *tokenizer, text));
  if (data.heldout.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.data, ": no held-out examples (heldout_fraction is 0?)"));
  }
  return model->Evaluate(data.heldout);
}

absl::StatusOr<std::string> LmHash(const std::string& checkpoint) {
  return lm::CheckpointSha256(checkpoint);
}

absl::Status LoraInit(const std::string& checkpoint, const lm::LoraConfig& lora,
                      const std::string& out) {
  lm::LoadOptions load;
  load.device = "cpu";
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<lm::CausalLm> model,
                           lm::CausalLm::Load(checkpoint, lora, load));
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord adapter, model->GetAdapter(/*trainable_only=*/true));
  TESSERA_ASSIGN_OR_RETURN(std::string hash, lm::CheckpointSha256(checkpoint));
  std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {"tessera_version", std::string(kVersion)},
      {"lora", LoraSummary(lora)},
      {"lora_init_seed", absl::StrCat(lora.init_seed)},
      {"base_sha256", hash}};
  return WriteSafetensorsFile(out, adapter, metadata);
}

absl::StatusOr<std::string> Generate(const GenerateCommandOptions& options) {
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<lm::Tokenizer> tokenizer,
                           lm::LoadTokenizer(options.checkpoint));
  TESSERA_ASSIGN_OR_RETURN(
      std::unique_ptr<lm::CausalLm> model,
      LoadAdapted(options.checkpoint, options.adapter, options.lora, options.device));
  TESSERA_ASSIGN_OR_RETURN(
      std::vector<int32_t> prompt,
      options.chat ? lm::EncodeChatPrompt(*tokenizer, options.prompt, /*chat_date=*/"")
                   : tokenizer->Encode(options.prompt, {.add_special_tokens = true}));
  lm::GenerateOptions g;
  g.max_new_tokens = options.max_new_tokens;
  g.temperature = options.temperature;
  g.top_p = options.top_p;
  g.seed = options.seed;
  if (tokenizer->eos_id().has_value()) g.stop_ids.push_back(*tokenizer->eos_id());
  for (int64_t id : model->config().eos_token_ids) g.stop_ids.push_back(id);
  TESSERA_ASSIGN_OR_RETURN(std::vector<int32_t> ids, model->Generate(prompt, g));
  return tokenizer->Decode(ids, /*skip_special_tokens=*/true);
}

absl::Status ExportLm(const ExportCommandOptions& options) {
  if (options.peft_out.empty() && options.merged_out.empty()) {
    return absl::InvalidArgumentError("give --peft-out DIR and/or --merged-out DIR");
  }
  TESSERA_ASSIGN_OR_RETURN(
      std::unique_ptr<lm::CausalLm> model,
      LoadAdapted(options.checkpoint, options.adapter, options.lora, "cpu"));
  if (!options.peft_out.empty()) {
    TESSERA_ASSIGN_OR_RETURN(ArrayRecord adapter, model->GetAdapter());
    TESSERA_RETURN_IF_ERROR(lm::WritePeftAdapter(
        options.peft_out, model->config(), *model->lora(), adapter,
        options.base_name.empty() ? options.checkpoint : options.base_name));
  }
  if (!options.merged_out.empty()) {
    TESSERA_ASSIGN_OR_RETURN(ArrayRecord merged, model->MergedWeights());
    TESSERA_RETURN_IF_ERROR(lm::WriteHfCheckpoint(options.merged_out, model->config(), merged));
    for (const char* name : kTokenizerFiles) {
      const std::filesystem::path from = std::filesystem::path(options.checkpoint) / name;
      if (!std::filesystem::exists(from)) continue;
      std::error_code ec;
      std::filesystem::copy_file(from, std::filesystem::path(options.merged_out) / name,
                                 std::filesystem::copy_options::overwrite_existing, ec);
      if (ec) {
        return absl::InternalError(absl::StrCat("copying ", from.string(), ": ", ec.message()));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Pretrain(const PretrainOptions& o) {
  if (o.corpus.empty()) return absl::InvalidArgumentError("--corpus: give at least one file");
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  if (ec) return absl::InternalError(absl::StrCat("--out ", o.out, ": ", ec.message()));

  // 1. The tokenizer: byte-level BPE learned from all of the corpus.
  std::vector<std::string> texts;
  for (const std::string& path : o.corpus) {
    TESSERA_ASSIGN_OR_RETURN(std::vector<std::string> t, lm::ReadTextRecords(path));
    texts.insert(texts.end(), t.begin(), t.end());
  }
  std::cout << "pretrain: " << texts.size() << " documents from " << o.corpus.size()
            << " files; training a " << o.vocab_size << "-token byte-level BPE tokenizer\n"
            << std::flush;
  const lm::ByteLevelBpeTrainOptions bpe;
  TESSERA_ASSIGN_OR_RETURN(std::string tokenizer_json,
                           lm::TrainByteLevelBpeTokenizerJson(texts, o.vocab_size, bpe));
  TESSERA_RETURN_IF_ERROR(
      WriteFileAtomically(o.out + "/tokenizer.json", tokenizer_json, 0644, true));
  TESSERA_RETURN_IF_ERROR(WriteFileAtomically(o.out + "/tokenizer_config.json",
                                              lm::ByteLevelBpeTokenizerConfigJson(bpe), 0644,
                                              true));
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<lm::Tokenizer> tokenizer, lm::LoadTokenizer(o.out));

  // 2. The architecture and a random initialization (transformers' _init_weights: normal
  //    with std initializer_range = 0.02 for linear and embedding weights, ones for norms).
  lm::CausalLmConfig config;
  config.model_type = "llama";
  config.vocab_size = tokenizer->vocab_size();
  config.hidden_size = o.hidden_size;
  config.intermediate_size = o.intermediate_size;
  config.num_hidden_layers = o.num_layers;
  config.num_attention_heads = o.num_heads;
  config.num_key_value_heads = o.num_kv_heads;
  config.head_dim = o.hidden_size / o.num_heads;
  config.max_position_embeddings = std::max<int64_t>(o.max_seq_length, 256);
  config.rms_norm_eps = 1e-5;
  config.rope_theta = 10000;
  config.tie_word_embeddings = true;
  config.torch_dtype = "float32";
  if (tokenizer->bos_id().has_value()) config.bos_token_id = *tokenizer->bos_id();
  if (tokenizer->eos_id().has_value()) config.eos_token_ids = {*tokenizer->eos_id()};
  if (tokenizer->pad_id().has_value()) config.pad_token_id = *tokenizer->pad_id();
  TESSERA_ASSIGN_OR_RETURN(lm::HfCheckpoint init,
                           lm::InitializedCheckpoint(config, o.seed, o.out));
  lm::LoadOptions load;
  load.device = o.device;
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<lm::CausalLm> model,
                           lm::CausalLm::FromCheckpoint(init, std::nullopt, load));

  // 3. Packed blocks of the corpus, 5% of each file held out.
  lm::TextDataOptions text;
  text.format = "text";
  text.max_seq_length = o.max_seq_length;
  text.packing = true;
  text.heldout_fraction = 0.05;
  std::vector<lm::TokenizedExample> train, heldout;
  for (const std::string& path : o.corpus) {
    TESSERA_ASSIGN_OR_RETURN(lm::TextData d, lm::LoadTextData(path, *tokenizer, text));
    train.insert(train.end(), d.train.begin(), d.train.end());
    heldout.insert(heldout.end(), d.heldout.begin(), d.heldout.end());
  }
  std::cout << "pretrain: " << model->num_parameters() << " parameters (" << config.num_hidden_layers
            << " layers, hidden " << config.hidden_size << ", vocab " << config.vocab_size
            << ") on " << model->device() << "; " << train.size() << " blocks of "
            << o.max_seq_length << " tokens\n"
            << std::flush;
  TESSERA_ASSIGN_OR_RETURN(lm::LmEvalResult before, model->Evaluate(heldout, 16));

  // 4. AdamW with warm-up and cosine decay, reporting progress every tenth of the steps.
  const uint32_t chunk = std::max<uint32_t>(1, o.steps / 10);
  for (uint32_t done = 0; done < o.steps; done += chunk) {
    lm::LmTrainOptions t;
    t.batch_size = o.batch_size;
    t.steps = std::min(chunk, o.steps - done);
    t.learning_rate = o.learning_rate;
    t.lr_schedule = "cosine";
    t.warmup_steps = o.steps / 20;
    t.first_step = done;
    t.total_steps = o.steps;
    t.weight_decay = 0.01;
    t.max_grad_norm = 1.0;
    t.seed = o.seed * 7919 + done;
    TESSERA_ASSIGN_OR_RETURN(lm::LmTrainResult r, model->Train(train, t));
    std::cout << absl::StrFormat("pretrain: step %u/%u  train loss %.3f  lr %.2e  %.1f s\n",
                                 done + t.steps, o.steps, r.train_loss, r.last_learning_rate,
                                 r.seconds)
              << std::flush;
  }
  TESSERA_ASSIGN_OR_RETURN(lm::LmEvalResult after, model->Evaluate(heldout, 16));
  std::cout << absl::StrFormat("pretrain: held-out perplexity %.2f -> %.2f (%llu tokens)\n",
                               before.perplexity, after.perplexity,
                               static_cast<unsigned long long>(after.target_tokens));

  // 5. The checkpoint in Hugging Face's layout, with its model card.
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord weights, model->MergedWeights());
  TESSERA_RETURN_IF_ERROR(lm::WriteHfCheckpoint(o.out, config, weights));
  nlohmann::json generation = {{"_from_model_config", true}};
  if (config.bos_token_id.has_value()) generation["bos_token_id"] = *config.bos_token_id;
  if (!config.eos_token_ids.empty()) generation["eos_token_id"] = config.eos_token_ids[0];
  TESSERA_RETURN_IF_ERROR(WriteJson(o.out + "/generation_config.json", generation));
  std::vector<std::string> corpus_names;
  for (const std::string& p : o.corpus) {
    corpus_names.push_back(std::filesystem::path(p).filename().string());
  }
  const std::string card = absl::StrFormat(
      "---\nlibrary_name: transformers\nlicense: other\ntags: [tessera, llama, tiny, demo]\n---\n"
      "# Tiny Llama-architecture base model (Tessera demo)\n\n"
      "Pretrained from scratch by `tessera-model pretrain` (Tessera %s) so that the federated "
      "LoRA demo has an open base model on machines that cannot download one. It is a toy: "
      "%lld parameters, %lld layers, hidden size %lld, %lld attention heads (%lld key/value "
      "heads), tied embeddings, a %lld-token byte-level BPE vocabulary trained on the same "
      "corpus.\n\n"
      "## Training data\n%s (JSONL made from Debian's `fortunes` collections; their "
      "licenses are in /usr/share/doc/fortunes*/copyright).\n\n"
      "## Training\nAdamW, learning rate %g with warm-up and cosine decay, %u steps of %u "
      "blocks of %u tokens, weight decay 0.01, gradient clipping 1.0, seed %llu.\n\n"
      "## Evaluation\nHeld-out perplexity (5%% of each file): %.2f before training, %.2f "
      "after, over %llu tokens.\n\n"
      "## Intended use and limitations\nFor demonstrating and testing federated fine-tuning "
      "only. It produces fortune-cookie-like text and no useful or factual output.\n",
      kVersion, static_cast<long long>(model->num_parameters()),
      static_cast<long long>(config.num_hidden_layers),
      static_cast<long long>(config.hidden_size),
      static_cast<long long>(config.num_attention_heads),
      static_cast<long long>(config.num_key_value_heads),
      static_cast<long long>(config.vocab_size), absl::StrJoin(corpus_names, ", "),
      o.learning_rate, o.steps, o.batch_size, o.max_seq_length,
      static_cast<unsigned long long>(o.seed), before.perplexity, after.perplexity,
      static_cast<unsigned long long>(after.target_tokens));
  return WriteFileAtomically(o.out + "/README.md", card, 0644, /*replace=*/true);
}

}  // namespace tessera

#include "client/lm/text/text_data.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/lm/text/chat_template.h"
#include "client/lm/text/prompt_template.h"
#include "core/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace tessera::lm {
namespace {

using json = nlohmann::json;

enum class Format { kText, kInstruction };

// One record as read: its line number and its strings.
struct Record {
  uint64_t line = 0;
  std::string text;                        // kText
  std::string instruction, input, output;  // kInstruction
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// Lines of a file, each at most `max_bytes` long (after dropping "\n" and a "\r" before it).
// A longer line is an error as soon as it passes the limit: it is never held whole.
class LineReader {
 public:
  LineReader(std::FILE* f, std::string path, uint64_t max_bytes)
      : file_(f), path_(std::move(path)), max_bytes_(max_bytes) {}

  // The next line, nullopt at the end of the file.
  absl::StatusOr<std::optional<std::string>> Next() {
    if (eof_ && pos_ == end_) return std::nullopt;
    std::string line;
    ++line_number_;
    while (true) {
      if (pos_ == end_) {
        if (eof_) break;
        TESSERA_RETURN_IF_ERROR(Fill());
        continue;
      }
      const char* begin = buffer_.data() + pos_;
      const void* nl = std::memchr(begin, '\n', end_ - pos_);
      const size_t n = nl == nullptr ? end_ - pos_ : static_cast<const char*>(nl) - begin;
      // +1: a "\r" before the newline does not count against the limit.
      if (line.size() + n > max_bytes_ + 1) return TooLong();
      line.append(begin, n);
      pos_ += n;
      if (nl != nullptr) {
        ++pos_;
        break;
      }
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > max_bytes_) return TooLong();
    return line;
  }

  uint64_t line_number() const { return line_number_; }

 private:
  absl::Status Fill() {
    pos_ = 0;
    end_ = std::fread(buffer_.data(), 1, buffer_.size(), file_);
    if (end_ < buffer_.size()) {
      if (std::ferror(file_) != 0) {
        return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", path_));
      }
      eof_ = true;
    }
    return absl::OkStatus();
  }

  absl::Status TooLong() const {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ":", line_number_, ": line is longer than ", max_bytes_, " bytes"));
  }

  std::FILE* file_;
  std::string path_;
  uint64_t max_bytes_;
  std::string buffer_ = std::string(64 * 1024, '\0');
  size_t pos_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  uint64_t line_number_ = 0;
};

bool IsBlank(absl::string_view line) {
  return std::all_of(line.begin(), line.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

// The string field `key` of `object`; `fallback` when absent (an error when null).
absl::StatusOr<std::string> StringField(const json& object, const char* key,
                                        absl::string_view where, const char* fallback = nullptr) {
  const auto it = object.find(key);
  if (it == object.end()) {
    if (fallback != nullptr) return std::string(fallback);
    return absl::InvalidArgumentError(absl::StrCat(where, ": \"", key, "\" is missing"));
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": \"", key, "\" is not a string"));
  }
  return it->get<std::string>();
}

absl::Status CheckOptions(const TextDataOptions& o) {
  if (o.format != "auto" && o.format != "text" && o.format != "instruction") {
    return absl::InvalidArgumentError(
        absl::StrCat("format: must be auto, text or instruction, got \"", o.format, "\""));
  }
  if (o.prompt_template != "alpaca" && o.prompt_template != "chat") {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt_template: must be alpaca or chat, got \"", o.prompt_template, "\""));
  }
  if (o.max_seq_length < 2 || o.max_seq_length > kMaxSeqLengthLimit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_seq_length: must be in [2, ", kMaxSeqLengthLimit, "], got ", o.max_seq_length));
  }
  if (!(o.heldout_fraction >= 0 && o.heldout_fraction <= 0.5)) {
    return absl::InvalidArgumentError(
        absl::StrCat("heldout_fraction: must be in [0, 0.5], got ", o.heldout_fraction));
  }
  if (o.max_line_bytes == 0) {
    return absl::InvalidArgumentError("max_line_bytes: must be > 0");
  }
  return absl::OkStatus();
}

// Reads every record (up to max_records), checking the fields of `format` (decided by the
// first record when "auto").
absl::StatusOr<std::vector<Record>> ReadRecords(const std::string& path,
                                                const TextDataOptions& options, Format& format) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  LineReader reader(file.get(), path, options.max_line_bytes);
  std::vector<Record> records;
  while (options.max_records == 0 || records.size() < options.max_records) {
    TESSERA_ASSIGN_OR_RETURN(std::optional<std::string> line, reader.Next());
    if (!line.has_value()) break;
    if (IsBlank(*line)) continue;
    const std::string where = absl::StrCat(path, ":", reader.line_number());
    if (records.size() >= options.record_limit) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": more than ", options.record_limit, " records"));
    }
    json object;
    try {
      object = json::parse(*line);
    } catch (const json::parse_error& e) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": not JSON: ", e.what()));
    }
    if (!object.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": expected a JSON object"));
    }
    if (records.empty() && options.format == "auto") {
      format = object.contains("instruction") ? Format::kInstruction : Format::kText;
    }
    Record r;
    r.line = reader.line_number();
    if (format == Format::kText) {
      TESSERA_ASSIGN_OR_RETURN(r.text, StringField(object, "text", where));
    } else {
      TESSERA_ASSIGN_OR_RETURN(r.instruction, StringField(object, "instruction", where));
      TESSERA_ASSIGN_OR_RETURN(r.input, StringField(object, "input", where, ""));
      TESSERA_ASSIGN_OR_RETURN(r.output, StringField(object, "output", where));
    }
    records.push_back(std::move(r));
  }
  if (records.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no records"));
  return records;
}

// Whether record i is held out (see TextDataOptions::split_seed).
std::vector<bool> HeldOut(uint64_t n, double fraction, uint64_t seed) {
  std::vector<bool> held(n, false);
  uint64_t count = 0;
  if (fraction > 0 && n >= 2) {
    count = std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(fraction * n)));
    count = std::min(count, n - 1);
  }
  std::vector<uint64_t> p(n);
  for (uint64_t i = 0; i < n; ++i) p[i] = i;
  std::mt19937_64 rng(seed);
  for (uint64_t i = n; i-- > 1;) std::swap(p[i], p[rng() % (i + 1)]);
  for (uint64_t k = 0; k < count; ++k) held[p[k]] = true;
  return held;
}

uint64_t TargetTokens(const TokenizedExample& e) {
  uint64_t n = 0;
  for (size_t i = 1; i < e.labels.size(); ++i) n += e.labels[i] != kIgnoreLabel;
  return n;
}

// Tokenizes one part (train or held-out) of the records.
class PartBuilder {
 public:
  PartBuilder(const std::string& path, const Tokenizer& tokenizer, const TextDataOptions& options,
              int32_t eos, const ChatTemplate* chat)
      : path_(path), tokenizer_(tokenizer), options_(options), eos_(eos), chat_(chat) {}

  absl::Status AddText(const Record& r) {
    TESSERA_ASSIGN_OR_RETURN(std::vector<int32_t> ids, Encode(r, "text", r.text));
    ids.push_back(eos_);
    if (options_.packing) {
      stream_.insert(stream_.end(), ids.begin(), ids.end());
      ++records_;
      return absl::OkStatus();
    }
    if (ids.size() > options_.max_seq_length) ids.resize(options_.max_seq_length);
    TokenizedExample e;
    e.labels = ids;
    e.input_ids = std::move(ids);
    Add(std::move(e));
    return absl::OkStatus();
  }

  absl::Status AddInstruction(const Record& r) {
    if (chat_ != nullptr) return AddChat(r);
    const std::string source = AlpacaPrompt(r.instruction, r.input);
    TESSERA_ASSIGN_OR_RETURN(std::vector<int32_t> source_ids, Encode(r, "instruction", source));
    TESSERA_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                             Encode(r, "output", absl::StrCat(source, r.output)));
    ids.push_back(eos_);
    if (ids.size() > options_.max_seq_length) ids.resize(options_.max_seq_length);
    TokenizedExample e;
    e.labels = ids;
    std::fill_n(e.labels.begin(), std::min(source_ids.size(), e.labels.size()), kIgnoreLabel);
    e.input_ids = std::move(ids);
    Add(std::move(e));
    return absl::OkStatus();
  }

  // [user, assistant] rendered with the chat template; loss on the response only.
  absl::Status AddChat(const Record& r) {
    const std::string user =
        r.input.empty() ? r.instruction : absl::StrCat(r.instruction, "\n\n", r.input);
    absl::StatusOr<ChatRendering> rendered = chat_->RenderExchange(user, r.output);
    if (!rendered.ok()) {
      return absl::Status(rendered.status().code(),
                          absl::StrCat(path_, ":", r.line, ": ", rendered.status().message()));
    }
    const ChatRendering& c = *rendered;
    const std::string through_response = absl::StrCat(c.prompt, c.response);
    TESSERA_ASSIGN_OR_RETURN(std::vector<int32_t> prompt_ids,
                             Encode(r, "instruction", c.prompt, false));
    TESSERA_ASSIGN_OR_RETURN(std::vector<int32_t> response_ids,
                             Encode(r, "output", through_response, false));
    TESSERA_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                             Encode(r, "output", absl::StrCat(through_response, c.tail), false));
    const size_t first_target = CommonPrefix(prompt_ids, ids);
    const size_t end_target = CommonPrefix(response_ids, ids);
    if (ids.size() > options_.max_seq_length) ids.resize(options_.max_seq_length);
    TokenizedExample e;
    e.labels = ids;
    for (size_t i = 0; i < e.labels.size(); ++i) {
      if (i < first_target || i >= end_target) e.labels[i] = kIgnoreLabel;
    }
    e.input_ids = std::move(ids);
    Add(std::move(e));
    return absl::OkStatus();
  }

  // Cuts the packed stream into blocks (run_clm's group_texts; one shorter block when the
  // stream is shorter than one).
  void Finish() {
    if (stream_.empty()) return;
    const size_t len = options_.max_seq_length;
    const size_t blocks = stream_.size() < len ? 1 : stream_.size() / len;
    for (size_t b = 0; b < blocks; ++b) {
      const auto begin = stream_.begin() + static_cast<std::ptrdiff_t>(b * len);
      const auto end =
          stream_.begin() + static_cast<std::ptrdiff_t>(std::min(stream_.size(), (b + 1) * len));
      TokenizedExample e;
      e.input_ids.assign(begin, end);
      e.labels = e.input_ids;
      const uint64_t targets = TargetTokens(e);
      if (targets == 0) continue;  // a lone token: nothing to predict
      target_tokens_ += targets;
      examples_.push_back(std::move(e));
    }
    stream_.clear();
  }

  std::vector<TokenizedExample>& examples() { return examples_; }
  uint64_t records() const { return records_; }
  uint64_t skipped() const { return skipped_; }
  uint64_t target_tokens() const { return target_tokens_; }

 private:
  static size_t CommonPrefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
    return static_cast<size_t>(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first -
                               a.begin());
  }

  absl::StatusOr<std::vector<int32_t>> Encode(const Record& r, absl::string_view field,
                                              absl::string_view text,
                                              bool add_special_tokens = true) const {
    absl::StatusOr<std::vector<int32_t>> ids =
        tokenizer_.Encode(text, {.add_special_tokens = add_special_tokens});
    if (!ids.ok()) {
      return absl::Status(ids.status().code(), absl::StrCat(path_, ":", r.line, ": \"", field,
                                                            "\": ", ids.status().message()));
    }
    return ids;
  }

  void Add(TokenizedExample e) {
    const uint64_t targets = TargetTokens(e);
    if (targets == 0) {
      ++skipped_;
      return;
    }
    target_tokens_ += targets;
    ++records_;
    examples_.push_back(std::move(e));
  }

  const std::string& path_;
  const Tokenizer& tokenizer_;
  const TextDataOptions& options_;
  const int32_t eos_;
  const ChatTemplate* chat_;  // null: Alpaca
  std::vector<int32_t> stream_;
  std::vector<TokenizedExample> examples_;
  uint64_t records_ = 0;
  uint64_t skipped_ = 0;
  uint64_t target_tokens_ = 0;
};

}  // namespace

absl::StatusOr<TextData> LoadTextData(const std::string& jsonl_path, const Tokenizer& tokenizer,
                                      const TextDataOptions& options) {
  TESSERA_RETURN_IF_ERROR(CheckOptions(options));
  const std::optional<int32_t> eos = tokenizer.eos_id();
  if (!eos.has_value()) {
    return absl::InvalidArgumentError("the tokenizer has no EOS token (eos_id)");
  }
  Format format = options.format == "instruction" ? Format::kInstruction : Format::kText;
  TESSERA_ASSIGN_OR_RETURN(std::vector<Record> records, ReadRecords(jsonl_path, options, format));
  const std::vector<bool> held =
      HeldOut(records.size(), options.heldout_fraction, options.split_seed);
  std::optional<ChatTemplate> chat;
  if (format == Format::kInstruction && options.prompt_template == "chat") {
    TESSERA_ASSIGN_OR_RETURN(chat, LoadChatTemplate(tokenizer, options.chat_date));
  }
  const ChatTemplate* chat_ptr = chat.has_value() ? &*chat : nullptr;
  PartBuilder train(jsonl_path, tokenizer, options, *eos, chat_ptr);
  PartBuilder heldout(jsonl_path, tokenizer, options, *eos, chat_ptr);
  for (size_t i = 0; i < records.size(); ++i) {
    PartBuilder& part = held[i] ? heldout : train;
    TESSERA_RETURN_IF_ERROR(format == Format::kText ? part.AddText(records[i])
                                                    : part.AddInstruction(records[i]));
  }
  train.Finish();
  heldout.Finish();
  TextData data;
  data.train = std::move(train.examples());
  data.heldout = std::move(heldout.examples());
  data.train_records = train.records();
  data.heldout_records = heldout.records();
  data.train_target_tokens = train.target_tokens();
  data.skipped_records = train.skipped() + heldout.skipped();
  return data;
}

absl::StatusOr<std::vector<std::string>> ReadTextRecords(const std::string& jsonl_path) {
  TextDataOptions options;
  options.format = "text";
  Format format = Format::kText;
  TESSERA_ASSIGN_OR_RETURN(std::vector<Record> records,
                           ReadRecords(jsonl_path, options, format));
  std::vector<std::string> texts;
  texts.reserve(records.size());
  for (Record& r : records) texts.push_back(std::move(r.text));
  return texts;
}

}  // namespace tessera::lm

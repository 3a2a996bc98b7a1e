// File: sentencepiece_model.h
// A thin wrapper over sentencepiece::SentencePieceProcessor, compiled on its
// own: Debian's sentencepiece_processor.h declares `namespace absl { using
// std::string_view; }`, which clashes with Debian absl's own absl::string_view,
// so no file may include both. This header and its .cc use no absl;
// SentencePieceTokenizer (absl) is written against it.
#ifndef TESSERA_CLIENT_LM_TOKENIZER_SENTENCEPIECE_MODEL_H_
#define TESSERA_CLIENT_LM_TOKENIZER_SENTENCEPIECE_MODEL_H_

#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace tessera::lm {

class SentencePieceModel {
 public:
  // The model in file `path` (tokenizer.model), or null with *error set.
  static std::unique_ptr<SentencePieceModel> Load(const std::string& path, std::string* error);
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  // False with *error set when sentencepiece fails.
  bool Encode(const std::string& text, std::vector<int>* ids, std::string* error) const;
  bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const;

  int piece_size() const;
  int bos_id() const;  // -1 when the model has none
  int eos_id() const;
  int pad_id() const;
  int unk_id() const;
  int PieceToId(const std::string& piece) const;  // unk_id() when unknown
  std::string IdToPiece(int id) const;            // REQUIRES: 0 <= id < piece_size()
  bool IsControl(int id) const;                   // <s>, </s>, <pad> and the like
  bool IsUnknown(int id) const;

 private:
  SentencePieceModel();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TOKENIZER_SENTENCEPIECE_MODEL_H_

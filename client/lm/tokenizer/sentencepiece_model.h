// File: sentencepiece_model.h
// A thin wrapper over sentencepiece::SentencePieceProcessor. libsentencepiece lives in its
// own module, libtessera_sentencepiece.so (sentencepiece_shim.cc), loaded on first use with
// dlopen(RTLD_LOCAL | RTLD_DEEPBIND): Debian's libsentencepiece exports a private copy of
// protobuf-lite that crashes any program also linking Debian's libprotobuf (all of Tessera's)
// at start-up. The module is looked up in $TESSERA_SENTENCEPIECE_MODULE, then next to the
// running program, then in ../lib relative to it, then in the build tree.
// This header and its .cc use no absl; SentencePieceTokenizer (absl) is written against it.
#ifndef TESSERA_CLIENT_LM_TOKENIZER_SENTENCEPIECE_MODEL_H_
#define TESSERA_CLIENT_LM_TOKENIZER_SENTENCEPIECE_MODEL_H_

#include <memory>
#include <string>
#include <vector>

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
  void* processor_ = nullptr;  // owned; freed through the module
};

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TOKENIZER_SENTENCEPIECE_MODEL_H_

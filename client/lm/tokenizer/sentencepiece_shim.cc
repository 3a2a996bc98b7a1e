// libtessera_sentencepiece.so: libsentencepiece behind a C interface, loaded at run time by
// sentencepiece_model.cc with dlopen(RTLD_LOCAL | RTLD_DEEPBIND).
//
// Why a separate, privately loaded module: Debian's libsentencepiece.so.0 carries its own
// copy of protobuf-lite and exports it (google::protobuf::internal::MergeFromImpl and
// ~1,600 other symbols). Linked into a program that also links Debian's libprotobuf (every
// Tessera program: gRPC), the two copies interpose each other and the program crashes while
// protobuf registers its descriptors, before main(). Loaded locally with deep binding, the
// module and libsentencepiece resolve their symbols among themselves first, and nothing of
// theirs enters the program's global symbol scope.
//
// Only this file includes <sentencepiece_processor.h> (which also declares
// `namespace absl { using std::string_view; }`, clashing with Debian's absl).
#include <sentencepiece_processor.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

char* Copy(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out != nullptr) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

sentencepiece::SentencePieceProcessor* P(void* h) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(h);
}

}  // namespace

extern "C" {

// A processor for the model file, or null with *error (malloc'd) set.
__attribute__((visibility("default"))) void* tessera_spm_load(const char* path, char** error) {
  auto* p = new sentencepiece::SentencePieceProcessor();
  const sentencepiece::util::Status status = p->Load(path);
  if (!status.ok()) {
    *error = Copy(status.ToString());
    delete p;
    return nullptr;
  }
  return p;
}

__attribute__((visibility("default"))) void tessera_spm_free(void* h) { delete P(h); }

__attribute__((visibility("default"))) void tessera_spm_free_buffer(void* b) { std::free(b); }

// 1 on success with *ids (malloc'd) and *n set; 0 with *error (malloc'd) set.
__attribute__((visibility("default"))) int tessera_spm_encode(void* h, const char* text,
                                                              size_t len, int** ids, size_t* n,
                                                              char** error) {
  std::vector<int> out;
  const sentencepiece::util::Status status = P(h)->Encode(std::string(text, len), &out);
  if (!status.ok()) {
    *error = Copy(status.ToString());
    return 0;
  }
  *n = out.size();
  *ids = static_cast<int*>(std::malloc(sizeof(int) * (out.empty() ? 1 : out.size())));
  if (!out.empty()) std::memcpy(*ids, out.data(), sizeof(int) * out.size());
  return 1;
}

// 1 on success with *text (malloc'd, NUL-terminated) and *len set; 0 with *error set.
__attribute__((visibility("default"))) int tessera_spm_decode(void* h, const int* ids, size_t n,
                                                              char** text, size_t* len,
                                                              char** error) {
  std::string out;
  const sentencepiece::util::Status status = P(h)->Decode(std::vector<int>(ids, ids + n), &out);
  if (!status.ok()) {
    *error = Copy(status.ToString());
    return 0;
  }
  *len = out.size();
  *text = Copy(out);
  return 1;
}

__attribute__((visibility("default"))) int tessera_spm_piece_size(void* h) {
  return P(h)->GetPieceSize();
}
// which: 0 bos, 1 eos, 2 pad, 3 unk.
__attribute__((visibility("default"))) int tessera_spm_special_id(void* h, int which) {
  switch (which) {
    case 0: return P(h)->bos_id();
    case 1: return P(h)->eos_id();
    case 2: return P(h)->pad_id();
    default: return P(h)->unk_id();
  }
}
__attribute__((visibility("default"))) int tessera_spm_piece_to_id(void* h, const char* piece,
                                                                   size_t len) {
  return P(h)->PieceToId(std::string(piece, len));
}
// The piece (malloc'd, NUL-terminated; *len its size).
__attribute__((visibility("default"))) char* tessera_spm_id_to_piece(void* h, int id,
                                                                     size_t* len) {
  const std::string piece = P(h)->IdToPiece(id);
  *len = piece.size();
  return Copy(piece);
}
// which: 0 control, 1 unknown.
__attribute__((visibility("default"))) int tessera_spm_is(void* h, int id, int which) {
  return which == 0 ? P(h)->IsControl(id) : P(h)->IsUnknown(id);
}

}  // extern "C"

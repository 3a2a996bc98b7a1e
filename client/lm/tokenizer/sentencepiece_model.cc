#include "client/lm/tokenizer/sentencepiece_model.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

namespace tessera::lm {
namespace {

constexpr const char kModuleName[] = "libtessera_sentencepiece.so";

// The module's C interface (sentencepiece_shim.cc).
struct Module {
  void* (*load)(const char*, char**) = nullptr;
  void (*free_processor)(void*) = nullptr;
  void (*free_buffer)(void*) = nullptr;
  int (*encode)(void*, const char*, size_t, int**, size_t*, char**) = nullptr;
  int (*decode)(void*, const int*, size_t, char**, size_t*, char**) = nullptr;
  int (*piece_size)(void*) = nullptr;
  int (*special_id)(void*, int) = nullptr;
  int (*piece_to_id)(void*, const char*, size_t) = nullptr;
  char* (*id_to_piece)(void*, int, size_t*) = nullptr;
  int (*is)(void*, int, int) = nullptr;
  std::string error;  // why it could not be loaded
};

std::vector<std::string> Candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("TESSERA_SENTENCEPIECE_MODULE"); env != nullptr && *env) {
    out.push_back(env);
  }
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back((exe.parent_path() / kModuleName).string());
    out.push_back((exe.parent_path().parent_path() / "lib" / kModuleName).string());
  }
#ifdef TESSERA_SENTENCEPIECE_BUILD_PATH
  out.push_back(TESSERA_SENTENCEPIECE_BUILD_PATH);
#endif
  return out;
}

template <typename T>
bool Bind(void* handle, const char* name, T* fn, std::string* error) {
  *fn = reinterpret_cast<T>(dlsym(handle, name));
  if (*fn == nullptr) *error = std::string(kModuleName) + " lacks " + name;
  return *fn != nullptr;
}

const Module& GetModule() {
  static Module module;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string tried;
    void* handle = nullptr;
    for (const std::string& path : Candidates()) {
      if (!std::filesystem::exists(path)) {
        tried += " " + path;
        continue;
      }
      handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (handle != nullptr) break;
      const char* e = dlerror();
      tried += " " + path + " (" + (e ? e : "dlopen failed") + ")";
    }
    if (handle == nullptr) {
      module.error = std::string("SentencePiece support (") + kModuleName +
                     ") was not found; tried:" + tried +
                     " (set TESSERA_SENTENCEPIECE_MODULE to its path)";
      return;
    }
    std::string error;
    bool ok = Bind(handle, "tessera_spm_load", &module.load, &error) &&
              Bind(handle, "tessera_spm_free", &module.free_processor, &error) &&
              Bind(handle, "tessera_spm_free_buffer", &module.free_buffer, &error) &&
              Bind(handle, "tessera_spm_encode", &module.encode, &error) &&
              Bind(handle, "tessera_spm_decode", &module.decode, &error) &&
              Bind(handle, "tessera_spm_piece_size", &module.piece_size, &error) &&
              Bind(handle, "tessera_spm_special_id", &module.special_id, &error) &&
              Bind(handle, "tessera_spm_piece_to_id", &module.piece_to_id, &error) &&
              Bind(handle, "tessera_spm_id_to_piece", &module.id_to_piece, &error) &&
              Bind(handle, "tessera_spm_is", &module.is, &error);
    if (!ok) {
      module.load = nullptr;
      module.error = error;
    }
  });
  return module;
}

// Takes ownership of a buffer the module allocated.
std::string TakeString(const Module& m, char* s, size_t len) {
  std::string out = s == nullptr ? std::string() : std::string(s, len);
  m.free_buffer(s);
  return out;
}

}  // namespace

SentencePieceModel::SentencePieceModel() = default;

SentencePieceModel::~SentencePieceModel() {
  if (processor_ != nullptr) GetModule().free_processor(processor_);
}

std::unique_ptr<SentencePieceModel> SentencePieceModel::Load(const std::string& path,
                                                             std::string* error) {
  const Module& m = GetModule();
  if (m.load == nullptr) {
    *error = m.error;
    return nullptr;
  }
  char* e = nullptr;
  void* processor = m.load(path.c_str(), &e);
  if (processor == nullptr) {
    *error = TakeString(m, e, e == nullptr ? 0 : std::char_traits<char>::length(e));
    return nullptr;
  }
  std::unique_ptr<SentencePieceModel> model(new SentencePieceModel());
  model->processor_ = processor;
  return model;
}

bool SentencePieceModel::Encode(const std::string& text, std::vector<int>* ids,
                                std::string* error) const {
  const Module& m = GetModule();
  int* out = nullptr;
  size_t n = 0;
  char* e = nullptr;
  if (!m.encode(processor_, text.data(), text.size(), &out, &n, &e)) {
    *error = TakeString(m, e, e == nullptr ? 0 : std::char_traits<char>::length(e));
    return false;
  }
  ids->assign(out, out + n);
  m.free_buffer(out);
  return true;
}

bool SentencePieceModel::Decode(const std::vector<int>& ids, std::string* text,
                                std::string* error) const {
  const Module& m = GetModule();
  char* out = nullptr;
  size_t len = 0;
  char* e = nullptr;
  if (!m.decode(processor_, ids.data(), ids.size(), &out, &len, &e)) {
    *error = TakeString(m, e, e == nullptr ? 0 : std::char_traits<char>::length(e));
    return false;
  }
  *text = TakeString(m, out, len);
  return true;
}

int SentencePieceModel::piece_size() const { return GetModule().piece_size(processor_); }
int SentencePieceModel::bos_id() const { return GetModule().special_id(processor_, 0); }
int SentencePieceModel::eos_id() const { return GetModule().special_id(processor_, 1); }
int SentencePieceModel::pad_id() const { return GetModule().special_id(processor_, 2); }
int SentencePieceModel::unk_id() const { return GetModule().special_id(processor_, 3); }
int SentencePieceModel::PieceToId(const std::string& piece) const {
  return GetModule().piece_to_id(processor_, piece.data(), piece.size());
}
std::string SentencePieceModel::IdToPiece(int id) const {
  const Module& m = GetModule();
  size_t len = 0;
  char* s = m.id_to_piece(processor_, id, &len);
  return TakeString(m, s, len);
}
bool SentencePieceModel::IsControl(int id) const { return GetModule().is(processor_, id, 0); }
bool SentencePieceModel::IsUnknown(int id) const { return GetModule().is(processor_, id, 1); }

}  // namespace tessera::lm

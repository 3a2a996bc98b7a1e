#include "core/config/simulation_config.h"

#include "core/config/privacy_budget.h"

#include <cmath>
#include <filesystem>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/status_macros.h"
#include "toml++/toml.h"

namespace tessera {
namespace {

absl::Status Field(absl::string_view key, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("simulation.", key, ": ", message));
}

std::string Resolve(absl::string_view base_dir, const std::string& path) {
  const std::filesystem::path p(path);
  if (p.is_absolute() || base_dir.empty()) return path;
  return (std::filesystem::path(std::string(base_dir)) / p).lexically_normal().string();
}

class Reader {
 public:
  explicit Reader(const toml::table* t) : t_(t) {}
  absl::Status Int(const char* key, uint64_t lo, uint64_t hi, uint64_t& out) const {
    const toml::node* n = t_ ? t_->get(key) : nullptr;
    if (n == nullptr) return absl::OkStatus();
    const auto v = n->value<int64_t>();
    if (!n->is_integer() || !v) return Field(key, "must be an integer");
    if (*v < 0 || static_cast<uint64_t>(*v) < lo || static_cast<uint64_t>(*v) > hi) {
      return Field(key, absl::StrCat("must be in [", lo, ", ", hi, "], got ", *v));
    }
    out = static_cast<uint64_t>(*v);
    return absl::OkStatus();
  }
  absl::Status Float(const char* key, double lo, double hi, double& out) const {
    const toml::node* n = t_ ? t_->get(key) : nullptr;
    if (n == nullptr) return absl::OkStatus();
    const auto v = n->value<double>();
    if (!(n->is_floating_point() || n->is_integer()) || !v) return Field(key, "must be a number");
    if (!(*v >= lo && *v <= hi)) {
      return Field(key, absl::StrCat("must be in [", lo, ", ", hi, "], got ", *v));
    }
    out = *v;
    return absl::OkStatus();
  }
  absl::Status String(const char* key, std::string& out) const {
    const toml::node* n = t_ ? t_->get(key) : nullptr;
    if (n == nullptr) return absl::OkStatus();
    if (!n->is_string()) return Field(key, "must be a string");
    out = std::string(*n->value<std::string_view>());
    if (out.empty()) return Field(key, "is empty");
    return absl::OkStatus();
  }

 private:
  const toml::table* t_;
};

}  // namespace

absl::StatusOr<SimulationConfig> ParseSimulationConfig(absl::string_view toml_text,
                                                       absl::string_view base_dir) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(toml_text.data(), toml_text.size()));
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "line ", e.source().begin.line, ": ",
        absl::string_view(e.description().data(), e.description().size())));
  }
  SimulationConfig c;
  const toml::node* node = root.get("simulation");
  if (node != nullptr && !node->is_table()) {
    return absl::InvalidArgumentError("simulation: must be a table");
  }
  const toml::table* t = node != nullptr ? node->as_table() : nullptr;
  static constexpr absl::string_view kKeys[] = {
      "dataset",  "partition",    "clients",     "threads",         "device",
      "limit",    "test_every",   "availability", "availability_trace", "dropout",
      "speed_sigma", "examples_per_second", "bandwidth_mbps", "output", "transport",
      "privacy_budget", "base_checkpoint"};
  if (t != nullptr) {
    for (const auto& [key, value] : *t) {
      const std::string name(key.str());
      bool known = false;
      for (absl::string_view k : kKeys) known = known || k == name;
      if (!known) {
        return Field(name, absl::StrCat("unknown key; known: ", absl::StrJoin(kKeys, ", ")));
      }
    }
  }
  const Reader r(t);
  uint64_t clients = c.clients, threads = c.threads, limit = c.limit, every = c.test_every;
  std::string partition = "iid";
  TESSERA_RETURN_IF_ERROR(r.String("dataset", c.dataset));
  TESSERA_RETURN_IF_ERROR(r.String("partition", partition));
  TESSERA_RETURN_IF_ERROR(r.Int("clients", 1, kMaxVirtualClients, clients));
  TESSERA_RETURN_IF_ERROR(r.Int("threads", 0, 1024, threads));
  TESSERA_RETURN_IF_ERROR(r.String("device", c.device));
  TESSERA_RETURN_IF_ERROR(r.Int("limit", 0, 1ull << 40, limit));
  TESSERA_RETURN_IF_ERROR(r.Int("test_every", 0, 100000, every));
  TESSERA_RETURN_IF_ERROR(r.Float("availability", 0, 1, c.availability));
  TESSERA_RETURN_IF_ERROR(r.String("availability_trace", c.availability_trace));
  TESSERA_RETURN_IF_ERROR(r.Float("dropout", 0, 1, c.dropout));
  TESSERA_RETURN_IF_ERROR(r.Float("speed_sigma", 0, 10, c.speed_sigma));
  TESSERA_RETURN_IF_ERROR(r.Float("examples_per_second", 1e-6, 1e12, c.examples_per_second));
  TESSERA_RETURN_IF_ERROR(r.Float("bandwidth_mbps", 1e-6, 1e9, c.bandwidth_mbps));
  TESSERA_RETURN_IF_ERROR(r.String("output", c.output));
  TESSERA_RETURN_IF_ERROR(r.String("transport", c.transport));
  TESSERA_RETURN_IF_ERROR(r.String("privacy_budget", c.privacy_budget));
  TESSERA_RETURN_IF_ERROR(r.String("base_checkpoint", c.base_checkpoint));
  if (!c.privacy_budget.empty()) {
    if (absl::Status s = ParsePrivacyBudget(c.privacy_budget).status(); !s.ok()) {
      return Field("privacy_budget", s.message());
    }
  }
  if (c.transport != "in_process" && c.transport != "grpc") {
    return Field("transport",
                 absl::StrCat("must be \"in_process\" or \"grpc\", got \"", c.transport, "\""));
  }
  if (c.availability == 0) return Field("availability", "must be > 0 (no client would be online)");
  c.partition = partition;
  c.clients = static_cast<uint32_t>(clients);
  c.threads = static_cast<uint32_t>(threads);
  c.limit = limit;
  c.test_every = static_cast<uint32_t>(every);
  if (!c.availability_trace.empty()) c.availability_trace = Resolve(base_dir, c.availability_trace);
  if (!c.base_checkpoint.empty()) c.base_checkpoint = Resolve(base_dir, c.base_checkpoint);
  if (c.dataset.rfind("idx:", 0) == 0 || c.dataset.rfind("csv:", 0) == 0) {
    c.dataset = c.dataset.substr(0, 4) + Resolve(base_dir, c.dataset.substr(4));
  } else if (c.dataset.rfind("jsonl:", 0) == 0 && c.dataset.size() > 6) {
    c.dataset = "jsonl:" + Resolve(base_dir, c.dataset.substr(6));
  } else {
    return Field("dataset", absl::StrCat("must be \"idx:DIR\", \"csv:FILE\" or \"jsonl:FILE\", got \"",
                                         c.dataset, "\""));
  }
  return c;
}

}  // namespace tessera

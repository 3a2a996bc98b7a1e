// `tessera run report RUN [--out FILE]`: the run's status as one self-contained HTML page
// (tools/cli/run_report.h, docs/observability.md).
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/file.h"
#include "tools/cli/commands.h"
#include "tools/cli/format.h"
#include "tools/cli/run_report.h"

namespace tessera::cli {
int ReportRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id,
              std::string out_path) {
  auto stub = Connect(c);
  if (!stub.ok()) {
    std::cerr << "tessera: connect: " << stub.status().message() << "\n";
    return 1;
  }
  wire::v1::RunRef ref;
  ref.set_run_id(run_id);
  wire::v1::RunStatus status;
  auto ctx = UnaryContext(c);
  grpc::Status s = (*stub)->GetRunStatus(ctx.get(), ref, &status);
  if (!s.ok()) {
    std::cerr << "tessera: run report: " << s.error_message() << " ("
              << absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())) << ")\n";
    return 1;
  }
  if (out_path.empty()) out_path = absl::StrCat(run_id, ".html");
  const std::string html = RunReportHtml(status, absl::Now());
  if (absl::Status w = WriteFileAtomically(out_path, html, 0644, /*replace=*/true); !w.ok()) {
    std::cerr << "tessera: run report: " << w.message() << "\n";
    return 1;
  }
  std::error_code ec;
  const std::filesystem::path shown = std::filesystem::absolute(out_path, ec);
  const std::string where = ec ? out_path : shown.lexically_normal().string();
  if (out.json) {
    const nlohmann::json j = {{"run_id", run_id},
                              {"path", where},
                              {"bytes", html.size()},
                              {"rounds", status.rounds_size()}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "wrote the report of run " << run_id << " (" << status.rounds_size()
              << " round attempts) to " << where << " (" << HumanBytes(html.size()) << ")\n";
  }
  return 0;
}

}  // namespace tessera::cli

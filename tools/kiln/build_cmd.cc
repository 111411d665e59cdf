#include <filesystem>

#include "cli.h"
#include "commands.h"
#include "engine_cache.h"

namespace kiln::cli {

int build_command(const BuildOptions& o) {
  StatusOr<BuilderConfig> c = builder_config(o.engine);
  if (!c.ok()) return report_error(c.status());
  if (is_engine_file(o.model)) {
    return report_error(invalid_argument(o.model + " is already an engine file: build takes an "
                                                   "ONNX model"));
  }
  BuildReport report;
  Status st = build_engine_file(o.model, o.output, *c, &report);
  if (!st.ok()) return report_error(st);
  print_build_report(report, *c);
  std::error_code ec;
  uintmax_t size = std::filesystem::file_size(o.output, ec);
  std::printf("%s: wrote %s (%.1f MB, %s engine)\n", o.model.c_str(), o.output.c_str(),
              ec ? 0.0 : static_cast<double>(size) / 1e6, device_name(c->device));
  return kExitOk;
}

}  // namespace kiln::cli

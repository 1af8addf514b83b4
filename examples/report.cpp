// report: nanochat's report card (python -m nanochat.report {reset|generate}).
//   report reset     clears $NANOCHAT_BASE_DIR/report (its .md and .svg files) and writes header.md:
//                    git, hardware, compiler, the source's size, "Run started"
//   report generate  writes report/report.md from the header and the sections the stages wrote,
//                    with an SVG of each training stage's curves and the summary table
//   report plot METRICS.jsonl -o OUT.svg [--title T]   one run's curves as an SVG
// train/report_card.hpp says what each holds.

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/train/metrics_plot.hpp"
#include "nanochat/train/report_card.hpp"

using namespace nanochat;

int main(int argc, char** argv) {
  const std::string_view command = argc >= 2 ? argv[1] : "";
  if (command != "reset" && command != "generate" && command != "plot") {
    std::fprintf(stderr, "usage: report reset | report generate | report plot METRICS.jsonl -o OUT.svg [--title T]\n"
                         "(each takes --help)\n");
    return command == "--help" || command == "-h" ? 0 : 2;
  }
  std::string dir, out, title;
  std::vector<std::string> inputs;
  Flags flags(std::string("report ") + std::string(command), command == "plot" ? "a metrics.jsonl's curves as an SVG"
                                                              : command == "reset" ? "start a report card: clear it, write its header"
                                                                                   : "write report.md from the stages' sections");
  if (command == "plot") {
    flags.add("out", out, "the SVG to write", 'o')
        .add("title", title, "a line above the plot, e.g. the stage and the command")
        .positional("METRICS.jsonl", inputs, "a stage's metrics file (<base>/<stage>_checkpoints/<tag>/metrics.jsonl)");
  } else {
    flags.add("dir", dir, "the report directory (default $NANOCHAT_BASE_DIR/report)");
  }
  try {
    if (!flags.parse(argc - 1, argv + 1)) return 0;
    if (command == "plot") {
      NANOCHAT_CHECK(inputs.size() == 1, "report plot: give one metrics file (", inputs.size(), " given)");
      NANOCHAT_CHECK(!out.empty(), "report plot: give the SVG to write with -o");
      write_file_atomically(out, metrics_svg(inputs[0], title));
      return 0;
    }
    const std::filesystem::path where = dir.empty() ? report::report_dir() : std::filesystem::path(dir);
    if (command == "reset") report::reset(where);
    else report::generate(where);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "report %s: %s\n", std::string(command).c_str(), e.what());
    return 1;
  }
}

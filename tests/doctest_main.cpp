// doctest's main, plus two rules: a run that selects test cases by name and finds none fails, and
// a run in which a case called skip_test (skip_test.hpp) exits 77, ctest's "skipped".
// ctest runs each case as `--test-case=<name>`; a name that CMake's discovery mangles (a ';'
// splits it into two list items) then selects nothing, and doctest alone would report success.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string_view>

#include "skip_test.hpp"

namespace {

unsigned cases_selected = 0;
bool run_ended = false;

struct SelectionCounter : doctest::IReporter {
  explicit SelectionCounter(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& stats) override {
    cases_selected = stats.numTestCasesPassingFilters;
    run_ended = true;
  }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

}  // namespace

DOCTEST_REGISTER_LISTENER("selection_counter", 1, SelectionCounter);

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int result = context.run();
  if (context.shouldExit() || result != 0 || !run_ended) return result;  // --help, --list-*, failures
  bool filtered = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    filtered = filtered || arg.starts_with("--test-case=") || arg.starts_with("-tc=");
  }
  if (filtered && cases_selected == 0) {
    std::fprintf(stderr, "no test case matches the --test-case filter (a name CMake split at ';'?)\n");
    return 1;
  }
  return nanochat::testing::some_test_skipped() ? 77 : 0;
}

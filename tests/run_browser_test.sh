#!/usr/bin/env bash
# ctest's browser tests (serve.chat_page, train.report_page): runs a test script that drives
# headless Chromium over the DevTools protocol with the venv's Python, giving it --chromium;
# exits 77 (ctest: skipped) when Chromium (Debian's chromium) or that Python with the named
# packages is missing.
# Usage: run_browser_test.sh <python> <modules, comma-separated> <script.py> [script args...]
set -euo pipefail
python=$1 modules=$2 script=$3
shift 3
chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  echo "skipped: chromium is not installed (examples/setup.sh installs it)"
  exit 77
fi
if [ ! -x "$python" ] || ! "$python" -c "import $modules" 2>/dev/null; then
  echo "skipped: $python with the Python packages $modules is missing (tests/run_all.sh makes the venv; see docs/serve.md)"
  exit 77
fi
exec "$python" "$script" --chromium "$chromium" "$@"

#!/usr/bin/env bash
# ctest's serve.chat_page: runs test_chat_page.py (the page at / in headless Chromium) with the
# venv's Python; exits 77 (ctest: skipped) when Chromium (Debian's chromium) or that Python with
# its openai and websocket-client packages is missing.
# Usage: run_chat_page_test.sh <python> <chat_web> <write_tiny_chat_model> <work dir>
set -euo pipefail
python=$1
chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  echo "skipped: chromium is not installed (examples/setup.sh installs it)"
  exit 77
fi
if [ ! -x "$python" ] || ! "$python" -c "import openai, websocket" 2>/dev/null; then
  echo "skipped: $python with the openai and websocket-client packages is missing (tests/run_all.sh makes the venv; see docs/serve.md)"
  exit 77
fi
exec "$python" "$(dirname "$0")/test_chat_page.py" --chromium "$chromium" --chat-web "$2" --write-model "$3" --work "$4"

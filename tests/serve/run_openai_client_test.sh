#!/usr/bin/env bash
# ctest's serve.openai_client: runs test_openai_client.py with the Python that has the openai
# client; exits 77 (ctest: skipped) when that Python or its openai package is missing.
# Usage: run_openai_client_test.sh <python> <chat_web> <write_tiny_chat_model> <work dir>
set -euo pipefail
python=$1
if [ ! -x "$python" ] || ! "$python" -c "import openai" 2>/dev/null; then
  echo "skipped: $python with the openai package is missing (tests/run_all.sh makes the venv; see docs/serve.md)"
  exit 77
fi
exec "$python" "$(dirname "$0")/test_openai_client.py" --chat-web "$2" --write-model "$3" --work "$4"

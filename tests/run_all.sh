#!/usr/bin/env bash
# The test command: installs what is missing, builds everything (CUDA targets too when nvcc is
# present), runs the full suite, then the SIMT emulator suite again under ThreadSanitizer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash examples/setup.sh
jobs=$(nproc)

cmake -S . -B build/tests -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build/tests -j "$jobs"
# The official openai client (PyPI) for chat_web's API test and websocket-client for its page
# test in Chromium (tests/serve); where PyPI cannot be reached those tests are skipped, the rest
# of the suite runs.
venv=build/tests/openai-venv
if ! "$venv/bin/python" -c "import openai, websocket" 2>/dev/null; then
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q "openai>=1" websocket-client; } ||
    echo "run_all: the openai or websocket-client package could not be installed; serve.openai_client and serve.chat_page will be skipped"
fi
ctest --test-dir build/tests -j "$jobs" --output-on-failure --timeout 900

cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNANOCHAT_TSAN=ON
cmake --build build/tsan -j "$jobs"
ctest --test-dir build/tsan -j "$jobs" --output-on-failure --timeout 900

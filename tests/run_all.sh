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
ctest --test-dir build/tests -j "$jobs" --output-on-failure --timeout 900

cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNANOCHAT_TSAN=ON
cmake --build build/tsan -j "$jobs"
ctest --test-dir build/tsan -j "$jobs" --output-on-failure --timeout 900

#!/usr/bin/env bash
# convert.nanochat_checkpoint: converts the reference's tiny nanochat checkpoint (f32 and bf16) and
# checks each output with the C++ reader. Exit 77 (ctest: skipped) where PYTHON cannot import torch.
# usage: run_convert_test.sh PYTHON SOURCE_DIR WORK_DIR CHECKER
set -euo pipefail
python=$1 src=$2 work=$3 checker=$4
if ! "$python" -c 'import torch' >/dev/null 2>&1; then
  echo "SKIP: $python cannot import torch (install python3-torch)"
  exit 77
fi
ckpt="$src/tests/fixtures/model/nanochat_ckpt"
convert="$src/examples/convert/nanochat_to_safetensors.py"
mkdir -p "$work"
for dtype in f32 bf16; do
  out="$work/converted_$dtype.safetensors"
  rm -f "$out"
  "$python" "$convert" "$ckpt" --dtype "$dtype" -o "$out"  # the directory: the largest step (10)
  "$checker" "$out" "$ckpt/expected.safetensors" "$dtype"
done

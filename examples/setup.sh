#!/usr/bin/env bash
# Installs what nanochat.cpp needs on a Debian machine and is missing; does nothing when all is there.
# Called by the main job, the test command and the benchmark command, so none needs a manual step.
set -euo pipefail
packages=(
  g++ cmake ninja-build pkg-config git
  libopenblas-openmp-dev   # CPU GEMM (OpenMP threading, shares the pool with our loops)
  doctest-dev              # tests
  libbenchmark-dev         # benchmarks
  libzstd-dev              # parquet zstd pages (data pipeline)
  libsnappy-dev            # parquet snappy pages
  zlib1g-dev               # parquet gzip pages
  libcurl4-openssl-dev     # shard downloader (HTTPS to the FineWeb-EDU mirror)
  clang-16                 # libFuzzer run of the parquet reader (clang 14 lacks source_location)
  libclang-rt-16-dev       # libFuzzer and ASan runtimes for clang-16
  bible-kjv                # offline default corpus: the King James Bible (public domain), dumped by `bible`
  python3-torch            # reference model fixtures and the nanochat checkpoint converter (tests/convert)
  libpcre2-dev             # PCRE2: the split-pattern oracle in the tokenizer tests
  wamerican                # /usr/share/dict/words: the word list of the SpellingBee and SimpleSpelling tasks
  libcpp-httplib-dev       # HTTP server of chat_web (the chat server)
  libyaml-cpp-dev          # core.yaml of the DCLM eval bundle (base_eval --core)
  libexpat1-dev            # XML parser: the report card's SVG checked in the train tests
  python3-venv             # the venv with the openai client for chat_web's API tests (tests/serve)
  libjs-marked             # markdown in chat_web's page at / (served by chat_web from /usr/share/javascript/marked)
  chromium                 # headless browser of chat_web's page test (tests/serve, DevTools protocol)
  libopenmpi-dev           # MPI engine of data-parallel training (include/nanochat/dist)
  openmpi-bin              # mpirun: distributed base_train and its tests (tests/dist)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup: installing ${missing[*]}"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

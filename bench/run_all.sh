#!/usr/bin/env bash
# Every CPU benchmark behind BENCHMARKS.md, one after another, with the default settings.
# Each script prints its table and writes bench/results/<name>.json. Run from anywhere:
#
#     bash bench/run_all.sh            # about 2 hours on 2 cores
#     QUICK=1 bash bench/run_all.sh    # smoke run of every script (a few minutes each)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
Q=${QUICK:+--quick}
export PYTHONUNBUFFERED=1
run() { echo "=== $* ($(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"; $PY "$@" $Q; }
run bench/startup.py
run bench/omp_wait_policy.py
run bench/vs_tools.py --eval-limit 80
run bench/packing.py
run bench/methods.py --eval-limit 80 --variant "fft fp32=fft:train.bf16=false" \
    --variant "qlora dropout 0.05=qlora:method.lora_dropout=0.05"
run bench/ablations.py --qlora-fp32
run bench/nan_guard.py
run bench/allocator.py
run bench/attention_kernels.py
run bench/profile_plugins.py
run bench/floor.py
run bench/compile.py   # about 30 minutes: inductor compiles each method
echo "=== done ($(date +%T))"

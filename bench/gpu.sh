#!/usr/bin/env bash
# ftx on a GPU, offline: QLoRA and FFT of a random-initialised ~1B Llama (bench/gpu.py):
# tokens/s, peak GPU memory, MFU. Run from the repository root:
#
#     bash bench/gpu.sh [gpu.py options, e.g. --quick or --steps 50 --seq 2048]
#
# Needs on the GPU machine: python3 with a CUDA torch, transformers >= 5, peft, accelerate,
# tokenizers, pyyaml, pluggy, click, rich, matplotlib, setuptools (all in common CUDA images).
# What such an image usually lacks (trl, datasets and its dill/multiprocess, bitsandbytes)
# travels as wheels in bench/.wheels/ (git-ignored; about 45 MB), fetched here with:
#
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#         --implementation cp --platform manylinux_2_24_x86_64 --platform manylinux2014_x86_64 \
#         -d bench/.wheels bitsandbytes==0.50.2 trl==1.16.0 datasets==5.2.0 dill multiprocess
#
# (match --python-version to the GPU machine's python3). Nothing else is downloaded: the model
# is random, the tokenizer is built on the spot, and ftx is installed from this tree.
# Results: $OUT/gpu.json if OUT is set (a device runner's output folder), else bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if compgen -G "bench/.wheels/*.whl" >/dev/null; then
    # Only the wheels whose package is missing, so the image's own builds stay in charge.
    missing=()
    for whl in bench/.wheels/*.whl; do
        mod=$(basename "$whl" | cut -d- -f1)
        $PY -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$mod') is None)" \
            || missing+=("$whl")
    done
    if ((${#missing[@]})); then
        $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/ftx-site "${missing[@]}"
        export PYTHONPATH=/tmp/ftx-site${PYTHONPATH:+:$PYTHONPATH}
    fi
fi
# ftx itself from this tree (pure Python; the entry points need an install).
$PY -c "import ftx_qlora" 2>/dev/null \
    || $PY -m pip install -q --no-index --no-deps --no-build-isolation \
        -e . -e plugins/fft -e plugins/sft -e plugins/qlora
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
out=${OUT:-bench/results}
mkdir -p "$out"
$PY bench/gpu.py --out "$out" "$@" 2>&1 | tee "$out/gpu.log"

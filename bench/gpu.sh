#!/usr/bin/env bash
# ftx on one GPU, offline, in one command (bench/gpu.py): QLoRA and FFT of a random-initialised
# SmolLM2-shaped model and a ~1B Llama, in bf16 mode (fp32 masters + bf16 autocast; pure bf16
# beside it) and fp16 mode (the T4/V100 path: fp16 autocast + loss scaling), FSDP with one
# process, FlashAttention-2 when flash_attn is importable (its absence is recorded), GRPO on the
# QLoRA base with transformers generation and, when vllm is importable, TRL's vLLM; tokens/s,
# peak GPU memory, MFU and the attention used, in one JSON file. About 8 minutes on one H200:
# runs stop starting after --budget-s (360 s), the rest are recorded as skipped. Run from the
# repository root:
#
#     bash bench/gpu.sh [gpu.py options, e.g. --quick, --models 1b, --dry-run]
#
# Needs on the GPU machine: python3 with a CUDA torch, transformers >= 5, peft, accelerate,
# tokenizers, pyyaml, pluggy, click, rich, matplotlib, pandas, pyarrow, xxhash (the H200
# image has them). What it lacks (trl, datasets with dill and multiprocess, bitsandbytes: 43 MB)
# travels as wheels in bench/.wheels/ (git-ignored; name it in the device runner's carry),
# fetched here with:
#
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#         --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
#         --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d bench/.wheels \
#         bitsandbytes==0.50.2 trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
#
# (match --python-version to the GPU machine's python3). Nothing else is downloaded: the models
# are random, the tokenizer is built on the spot, and ftx is installed from this tree. Without
# the wheels, the runs that need a missing package fail and say which (the JSON records it).
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
$PY -c "import ftx_qlora, ftx_grpo" 2>/dev/null \
    || $PY -m pip install -q --no-index --no-deps --no-build-isolation \
        -e . -e plugins/fft -e plugins/sft -e plugins/qlora -e plugins/grpo
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
# Say up front what is missing rather than failing run by run.
$PY - <<'PY'
import importlib.util
need = "trl datasets bitsandbytes peft accelerate pandas pyarrow xxhash dill multiprocess vllm"
missing = [m for m in need.split() if importlib.util.find_spec(m) is None]
print("missing packages:", ", ".join(missing) if missing else "none")
print("flash_attn:", "importable" if importlib.util.find_spec("flash_attn") else "absent")
print("vllm:", "importable" if importlib.util.find_spec("vllm") else "absent (grpo-qlora-vllm skipped)")
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
out=${OUT:-bench/results}
mkdir -p "$out"
$PY bench/gpu.py --out "$out" "$@" 2>&1 | tee "$out/gpu.log"

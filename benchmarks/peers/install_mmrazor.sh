#!/usr/bin/env bash
# MMRazor 1.0.0 (OpenMMLab's NAS toolbox, last release April 2023) in a
# virtual environment of its own, for the side-by-side benchmarks
# (benchmarks/search_throughput.py, benchmarks/supernet_overhead.py).
# Idempotent: a second run only checks.
#
#   bash benchmarks/peers/install_mmrazor.sh [VENV]   # default work_dirs/peers/mmrazor
#
# What it takes under torch 2.13 (docs/benchmarks.md, "Peers"):
#   - torch 2.13.0 (CPU), mmcv 2.1.0 (the same source build as ours: pip's
#     cached wheel), mmengine 0.10, mmdet 3.3.0, mmrazor 1.0.0 and mmcls
#     1.0.0rc6 without its dependencies (mmrazor 1.0 imports mmcls, not
#     mmpretrain), plus modelindex and joblib, which their wheels use
#     without declaring; numpy < 2 and opencv-python < 4.11;
#   - three import-time patches, applied by patch_mmrazor.py beside this
#     script (torch 2.x removed helpers mmrazor's quantization imports,
#     torch-AO backend configs built at import time, mmcls's mmcv cap).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${1:-$ROOT/work_dirs/peers/mmrazor}"
PY="${PYTHON:-python}"
say() { printf '[mmrazor] %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install --disable-pip-version-check -q)
if "$VPY" -c 'import mmrazor, mmcls, mmdet, mmcv.ops' 2>/dev/null; then
  say "already installed: $("$VPY" -c 'import mmrazor; print(mmrazor.__version__)')"
else
  "${PIP[@]}" 'setuptools>=77.0.3,<81' wheel
  "${PIP[@]}" "${TORCH_SPEC:-torch==2.13.0}"  # PyPI's 2.13.0 on Linux x86: the CPU build
  "${PIP[@]}" 'numpy<2' 'opencv-python<4.11' 'mmengine>=0.10.3,<0.11'
  say "mmcv 2.1.0 (pip's cached wheel, else a ~12 min source build)"
  MMCV_WITH_OPS=1 "${PIP[@]}" --no-build-isolation mmcv==2.1.0
  "${PIP[@]}" mmdet==3.3.0 mmrazor==1.0.0 modelindex joblib
  "${PIP[@]}" --no-deps mmcls==1.0.0rc6
fi
"$VPY" "$HERE/patch_mmrazor.py"
"$VPY" -c 'import torch, mmcv, mmdet, mmrazor, mmcls; from mmrazor.models import SPOS; print("[mmrazor] ok: torch", torch.__version__, "mmcv", mmcv.__version__, "mmdet", mmdet.__version__, "mmrazor", mmrazor.__version__)'

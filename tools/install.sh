#!/usr/bin/env bash
# Set up mmnas_tricks in the active Python environment. Idempotent: a second run
# only checks what is there (pip reuses its cached mmcv wheel).
#
#   bash tools/install.sh            # install
#   bash tools/install.sh --dry-run  # say what would be done, change nothing
#
# Order matters:
#   1. build tools: setuptools>=77.0.3,<81 (torch 2.13 needs >=77.0.3; mmcv 2.1's
#      setup.py and mmengine 0.10 import pkg_resources, removed in setuptools 81);
#   2. torch: an installed torch is kept (a CUDA build is never replaced); without
#      one, a CPU build when no NVIDIA GPU is visible, else PyPI's default (CUDA)
#      build. Override with TORCH_SPEC (e.g. TORCH_SPEC='torch==2.4.1').
#   3. mmcv 2.1.0 with compiled ops, built from source against that torch
#      (--no-build-isolation; ~7 min on 2 cores, CUDA ops too when torch has CUDA);
#   4. mmengine, mmdet 3.3.0, mmsegmentation 1.2.2 from their wheels (they ship
#      .mim/configs, which `_base_ = 'mmdet::...'` needs), ftfy, regex, mlxtend, ...,
#      and the pinned linters of the lint gate (requirements/lint.txt);
#   5. mmnas_tricks itself, editable.
set -euo pipefail

DRY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$arg' (valid: --dry-run, --help)" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
command -v "$PY" >/dev/null || { echo "install.sh: '$PY' not found; activate a Python 3.9-3.11 environment or set PYTHON" >&2; exit 1; }
PIP=("$PY" -m pip install --disable-pip-version-check)
TORCH_CPU_VERSION="${TORCH_CPU_VERSION:-2.13.0}"

say() { printf '[install] %s\n' "$*"; }
run() { say "+ $*"; if [ "$DRY" = 0 ]; then "$@"; fi; }

say "python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')"

# 1. build tools -------------------------------------------------------------
run "${PIP[@]}" -r "$ROOT/requirements/build.txt"

# 2. torch ---------------------------------------------------------------------
if torch_info=$("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda or "cpu")' 2>/dev/null); then
  say "torch already installed ($torch_info): kept"
else
  if [ -n "${TORCH_SPEC:-}" ]; then
    spec="$TORCH_SPEC"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    say "NVIDIA GPU visible: installing PyPI's default (CUDA) torch build"
    spec="torch"
  else
    say "no GPU: installing the CPU build torch==$TORCH_CPU_VERSION"
    spec="torch==$TORCH_CPU_VERSION"
  fi
  run "${PIP[@]}" "$spec"
fi

# 3. mmcv with compiled ops -----------------------------------------------------
mmcv_ok() {
  "$PY" - <<'EOF' 2>/dev/null
import mmcv
assert mmcv.__version__ == '2.1.0', mmcv.__version__
from mmcv.ops import nms, RoIAlign, DeformConv2d, ModulatedDeformConv2d  # noqa: F401
EOF
}
if mmcv_ok; then
  say "mmcv 2.1.0 with ops already installed: kept"
else
  say "building mmcv 2.1.0 from source against the installed torch (about 13 minutes on 2 cores; pip caches the wheel)"
  # mmcv's setup.py reads MMCV_WITH_OPS (default 1) and builds CUDA ops when torch
  # sees CUDA (or FORCE_CUDA=1).
  run env MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "${PIP[@]}" --no-build-isolation -r "$ROOT/requirements/mmcv.txt"
  if [ "$DRY" = 0 ] && ! mmcv_ok; then
    echo "install.sh: mmcv 2.1.0 installed but its compiled ops do not import; see docs/install.md, 'Troubleshooting the mmcv build'" >&2
    exit 1
  fi
fi

# 4. the OpenMMLab stack and the rest ---------------------------------------------
# The build requirements are repeated so that nothing upgrades setuptools past 81.
run "${PIP[@]}" -r "$ROOT/requirements/build.txt" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" -r "$ROOT/requirements/lint.txt"

# 5. this package, editable --------------------------------------------------------
run "${PIP[@]}" --no-build-isolation --no-deps -e "$ROOT"

if [ "$DRY" = 0 ]; then
  "$PY" - <<'EOF'
import torch, mmcv, mmengine, mmdet, mmseg, mmnas_tricks
from mmcv.ops import nms, RoIAlign, DeformConv2d, ModulatedDeformConv2d  # noqa: F401
print(f'[install] ok: torch {torch.__version__} (cuda {torch.version.cuda}), mmcv {mmcv.__version__}, '
      f'mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, '
      f'mmnas_tricks {mmnas_tricks.__version__}')
EOF
fi

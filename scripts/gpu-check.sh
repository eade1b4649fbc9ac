#!/usr/bin/env bash
# The device check: run on a machine with an NVIDIA GPU where CuPy is already installed.
#
#   scripts/gpu-check.sh OUTDIR        (or: make gpu-check GPU_OUT=OUTDIR)
#
# 1. checks that CuPy sees a GPU (exit 1 if not),
# 2. `symbench verify` on the four GPU kernels, conv and group (exit 1 if a check fails or
#    a kernel got no check),
# 3. the sweep of configs/gpu.toml into OUTDIR/run,
# 4. the report and the plot of that run, when this symbench has those commands.
# OUTDIR also gets info.json, kernels.json, verify.json (every check), verify.txt (a summary)
# and gpu-check.log.
#
# It never installs or reinstalls anything: symbench runs from this checkout
# (PYTHONPATH) with the Python given by $PYTHON (default python3), whose CuPy
# (e.g. cupy-cuda13x) is used as it is. pyFFTW, threadpoolctl and platformdirs
# may be missing. numpy, scipy, pandas, typer and rich are needed.
set -uo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: scripts/gpu-check.sh OUTDIR" >&2
    exit 2
fi
OUT=$1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
CONFIG=${GPU_CONFIG:-$ROOT/configs/gpu.toml}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
SB=("$PY" -m symbench)
t_start=$(date +%s)

die() { echo "gpu-check: $*" >&2; exit 1; }
step() { echo "== $* ($(( $(date +%s) - t_start )) s)"; }

command -v "$PY" >/dev/null 2>&1 || die "no Python at '$PY' (set PYTHON=/path/to/python)"
missing=$("$PY" - <<'PY'
import importlib
need = ["numpy", "scipy", "pandas", "typer", "rich"]
print(" ".join(m for m in need if importlib.util.find_spec(m) is None))
PY
)
[ -z "$missing" ] || die "missing Python packages: $missing (install them with pip; CuPy itself is never installed here)"

step "GPU"
gpu_line=$("$PY" - <<'PY' 2>&1
try:
    import cupy
except Exception as exc:
    raise SystemExit(f"no usable GPU: cannot import cupy ({type(exc).__name__}: {exc})")
try:
    n = cupy.cuda.runtime.getDeviceCount()
    props = cupy.cuda.runtime.getDeviceProperties(0)
except Exception as exc:
    raise SystemExit(f"no usable GPU: {' '.join(str(exc).split())}")
if n < 1:
    raise SystemExit("no usable GPU: CUDA reports no device")
print(f"{props['name'].decode()} (cc {props['major']}.{props['minor']}, "
      f"{props['totalGlobalMem'] / 2**30:.0f} GiB), CuPy {cupy.__version__}")
PY
) || die "$gpu_line"
echo "$gpu_line"

mkdir -p "$OUT" || die "cannot create $OUT"
[ -e "$OUT/run" ] && die "$OUT/run already exists; give a new OUTDIR"
exec > >(tee -a "$OUT/gpu-check.log") 2>&1

"${SB[@]}" info --json > "$OUT/info.json" || die "symbench info failed"
"${SB[@]}" kernels --json > "$OUT/kernels.json" || die "symbench kernels failed"
"$PY" - "$OUT/kernels.json" <<'PY' || die "the GPU kernels are not available (see $OUT/kernels.json)"
import json, sys
rows = {r["name"]: r for r in json.load(open(sys.argv[1]))}
bad = [f"{r['name']}: {r['reason']}" for r in rows.values() if r["device"] == "gpu" and not r["available"]]
for line in bad:
    print("unavailable:", line)
sys.exit(1 if bad or not any(r["device"] == "gpu" for r in rows.values()) else 0)
PY

step "verify (GPU kernels)"
# Every GPU kernel ('*-cupy': direct-cupy, fft-cupy, gconv-direct-cupy, gconv-fft-cupy) against
# the float64 reference; the group kernels also for equivariance under every element of p4/p4m.
# The PyTorch twins ('*-torch-cuda': direct-torch-cuda, auto-torch-cuda, fft-torch-cuda) too when
# this Python has PyTorch with CUDA (nothing is installed here; without it they are left out).
VERIFY_KERNELS='*-cupy'
if "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
    VERIFY_KERNELS='*-cupy,*-torch-cuda'
else
    echo "PyTorch with CUDA not found: the *-torch-cuda kernels are not verified"
fi
"${SB[@]}" verify --kernel "$VERIFY_KERNELS" --json > "$OUT/verify.json" 2> "$OUT/verify.err"
rc=$?
"$PY" "$ROOT/scripts/gpu_verify_summary.py" "$OUT/verify.json" "$OUT/verify.txt"
vrc=$?
if [ $rc -ne 0 ] || [ $vrc -ne 0 ]; then
    cat "$OUT/verify.err" >&2
    die "symbench verify: a check failed or a GPU kernel went unchecked (verify exit $rc); see $OUT/verify.txt and $OUT/verify.json"
fi

step "sweep $CONFIG"
"${SB[@]}" sweep --config "$CONFIG" --out "$OUT/run" || die "the sweep failed (what was measured is in $OUT/run)"

has_command() { "${SB[@]}" "$1" --help >/dev/null 2>&1; }
step "report"
if has_command report; then
    "${SB[@]}" report "$OUT/run" --format markdown --out "$OUT/report.md" || die "symbench report failed"
    "${SB[@]}" report "$OUT/run" --format csv --out "$OUT/crossover.csv" || die "symbench report --format csv failed"
    "${SB[@]}" report "$OUT/run" --format json --out "$OUT/report.json" || true
    cat "$OUT/report.md"
else
    echo "symbench report is not in this version: report skipped (make it later with: symbench report $OUT/run)"
fi
step "plot"
if has_command plot; then
    "${SB[@]}" plot "$OUT/run" --out "$OUT/crossover.png" || die "symbench plot failed"
else
    echo "symbench plot is not in this version: plot skipped (make it later with: symbench plot $OUT/run)"
fi

step "done: $OUT"

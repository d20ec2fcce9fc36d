#!/usr/bin/env bash
# A GPU machine's first minutes, in one run that returns its numbers within 10 minutes:
#   1. environment facts: the GPU, Python, CuPy, PyTorch, NCCL, mpiexec, what fastnet makes of them
#   2. the benchmark: fastnet cupy against PyTorch CUDA (TwoLayerNet, MLP, SimpleConvNet,
#      DeepConvNet at batch 100 and 1024), losses compared with PyTorch's after the same steps
#   3. the GPU tests (pytest -m gpu, under a time cap), then the NVRTC and no-sync step tests
#   4. a 1-rank NCCL run of `fastnet train --distributed nccl` (it still calls NCCL's allreduce)
# The benchmark comes first: it is what the minutes are for.  Everything printed goes to
# $OUT/gpu_check.log; $OUT also gets summary.json (every step's status), bench_gpu.json and
# bench_gpu.png: four files, under the 8 a GPU run can return.  Nothing else is written there.
#
#   benchmarks/gpu_check.sh             # on the GPU machine, from anywhere
#   benchmarks/gpu_check.sh --dry-run   # on any machine: the same steps in well under a minute
#                                       # (numpy vs PyTorch CPU); says there is no GPU, exits 1
#
# Nothing is downloaded: the tree runs in place (python3 -m fastnet from the repository root).
# Python packages the image lacks (mpich for mpiexec, tqdm, threadpoolctl, matplotlib) are
# installed from wheels carried in $GPU_CHECK_WHEELS (default benchmarks/wheels; see the README's
# GPU section for the list and how to fill it).
# Environment: PYTHON (default python3), OUT (default benchmarks/results/gpu_check),
# GPU_CHECK_DEADLINE (seconds for the whole run, default 570), GPU_CHECK_T_BENCH (320),
# GPU_CHECK_T_TESTS (120), GPU_CHECK_T_KERNELS (45), GPU_CHECK_T_NCCL (60).
# Exit status: 0 only on a GPU with every workload measured against PyTorch with agreeing losses,
# the GPU tests passed and the NCCL run done; otherwise 1 (summary.json says what failed).
set -u
cd "$(dirname "$0")/.." || exit 2
DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown option $arg; use --dry-run or nothing" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python3}"
OUT_DIR="${OUT:-benchmarks/results/gpu_check}"
WHEELS="${GPU_CHECK_WHEELS:-benchmarks/wheels}"
DEADLINE="${GPU_CHECK_DEADLINE:-570}"
mkdir -p "$OUT_DIR" || exit 2
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"   # scratch: never under $OUT
trap 'rm -rf "$WORK"' EXIT
STEPS="$WORK/steps.tsv"
: > "$STEPS"
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"   # this tree's fastnet, even under mpiexec

# step NAME LIMIT COMMAND...: run under timeout within the overall deadline; record the outcome.
step() {
  local name=$1 limit=$2 left rc started
  shift 2
  left=$((DEADLINE - SECONDS))
  if [ "$left" -lt "$limit" ]; then limit=$left; fi
  if [ "$limit" -lt 5 ]; then
    printf '%s\tnot run\t0\tout of time\n' "$name" >> "$STEPS"
    echo "=== $name: not run (out of time)"
    return
  fi
  echo "=== $name (limit ${limit}s)"
  started=$SECONDS
  timeout -k 5 "$limit" "$@"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    printf '%s\tok\t%s\t\n' "$name" "$((SECONDS - started))" >> "$STEPS"
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    printf '%s\tfailed\t%s\ttimed out after %ss\n' "$name" "$((SECONDS - started))" "$limit" >> "$STEPS"
  else
    printf '%s\tfailed\t%s\texit %s\n' "$name" "$((SECONDS - started))" "$rc" >> "$STEPS"
  fi
}

have_module() { "$PY" -c "import $1" >/dev/null 2>&1; }

# Packages from the carried wheels (never from an index); a note when they are not there.
install_carried() {
  local missing=() module package
  for pair in tqdm:tqdm threadpoolctl:threadpoolctl matplotlib:matplotlib; do
    module=${pair%%:*}; package=${pair#*:}
    have_module "$module" || missing+=("$package")
  done
  [ -n "$(find_mpiexec)" ] || missing+=(mpich)
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "carried wheels: none needed"
  elif [ "$DRY_RUN" -eq 1 ]; then
    echo "carried wheels: would install ${missing[*]} from $WHEELS (dry run: nothing installed)"
  elif [ -d "$WHEELS" ]; then
    echo "carried wheels: installing ${missing[*]} from $WHEELS"
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" "${missing[@]}" \
      || "$PY" -m pip install -q --user --no-index --find-links "$WHEELS" "${missing[@]}" \
      || echo "carried wheels: install failed; the steps needing ${missing[*]} will say so"
  else
    echo "carried wheels: ${missing[*]} missing and no folder $WHEELS; the steps needing them will fail"
  fi
}

# mpiexec beside this Python (the mpich wheel's), in ~/.local/bin (a --user install), or on PATH.
find_mpiexec() {
  local beside
  beside="$(dirname "$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null)")/mpiexec"
  if [ -x "$beside" ]; then echo "$beside"
  elif [ -x "$HOME/.local/bin/mpiexec" ]; then echo "$HOME/.local/bin/mpiexec"
  else command -v mpiexec || true
  fi
}

facts() {
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv || true
  else
    echo "nvidia-smi: not found"
  fi
  "$PY" - <<'PYEOF'
import platform, sys
print(f"python {platform.python_version()} at {sys.executable}")
for name in ("numpy", "cupy", "torch", "numba", "mpi4py", "pytest", "hypothesis", "tqdm", "matplotlib"):
    try:
        module = __import__(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as exc:
        print(f"{name}: not importable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
try:
    import torch
    print(f"torch CUDA {torch.version.cuda}, torch.cuda.is_available() = {torch.cuda.is_available()}")
except Exception:
    pass
try:
    from cupy.cuda import nccl
    print(f"NCCL {nccl.get_version()}")
except Exception as exc:
    print(f"NCCL: not importable through CuPy ({type(exc).__name__})")
from fastnet.backends import availability, get_backend, select_backend
for name, reason in availability().items():
    print(f"fastnet backend {name:>6}: " + ("usable" if reason is None else reason))
print(select_backend("auto").message())
if availability().get("cupy") is None:
    print(get_backend("cupy").describe())
PYEOF
  echo "mpiexec: $(find_mpiexec)"
}

main() {
  echo "gpu_check: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname), output in $OUT_DIR$([ "$DRY_RUN" -eq 1 ] && echo ' (dry run)')"
  echo "=== environment"
  install_carried
  facts
  GPU=0
  if command -v nvidia-smi >/dev/null 2>&1 && "$PY" -c "
from fastnet.backends import unavailable_reason
raise SystemExit(0 if unavailable_reason('cupy') is None else 1)" >/dev/null 2>&1; then
    GPU=1
  else
    echo "gpu_check: NO GPU usable here (nvidia-smi missing or the cupy backend unavailable; reason above)"
  fi
  echo "$GPU" > "$WORK/gpu"

  if [ "$DRY_RUN" -eq 1 ]; then
    step bench 60 "$PY" benchmarks/bench_gpu.py --out "$OUT_DIR" --fastnet-backend numpy \
      --torch-device cpu --quick --nets two-layer simple-conv --batches 8
  else
    step bench "${GPU_CHECK_T_BENCH:-320}" "$PY" benchmarks/bench_gpu.py --out "$OUT_DIR" \
      --deadline "$(( ${GPU_CHECK_T_BENCH:-320} - 60 ))"
  fi
  # The GPU tests; on a CPU machine they skip with the reason, which the log shows.
  step gpu_tests "${GPU_CHECK_T_TESTS:-120}" "$PY" -m pytest -m gpu tests/ -q -rs -p no:cacheprovider \
    --maxfail=10
  # The kernels under this machine's NVRTC (sm_80 and sm_90), and the no-sync step on the host.
  local select=()
  [ "$DRY_RUN" -eq 1 ] && select=(-k "H200 or two-layer")   # a sample, to stay well under a minute
  step kernel_tests "${GPU_CHECK_T_KERNELS:-45}" "$PY" -m pytest tests/test_cuda_nvrtc.py \
    tests/test_gpu_step_syncs.py -q -rs -p no:cacheprovider ${select[@]+"${select[@]}"}
  local mpiexec
  mpiexec="$(find_mpiexec)"
  if [ -n "$mpiexec" ]; then
    step nccl_smoke "${GPU_CHECK_T_NCCL:-60}" "$mpiexec" -n 1 "$PY" -m fastnet train --backend cupy \
      --strict-backend --distributed nccl --dataset sample --limit 2000 --epochs 1 --quiet \
      --out "$WORK/nccl_smoke" --overwrite
  else
    printf 'nccl_smoke\tfailed\t0\tno mpiexec (carry the mpich wheel in %s)\n' "$WHEELS" >> "$STEPS"
    echo "=== nccl_smoke: not run: no mpiexec (carry the mpich wheel in $WHEELS)"
  fi

  "$PY" - "$STEPS" "$OUT_DIR" "$GPU" "$DRY_RUN" "$SECONDS" <<'PYEOF'
import json, os, sys, tempfile
steps_file, out_dir, gpu, dry_run, seconds = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1", int(sys.argv[5])
steps = {}
for line in open(steps_file):
    name, status, took, detail = (line.rstrip("\n").split("\t") + [""])[:4]
    steps[name] = {"status": status, "seconds": int(took), "detail": detail}
failed = [f"{n}: {s['detail'] or s['status']}" for n, s in steps.items() if s["status"] != "ok"]
bench = {}
try:
    bench = json.load(open(os.path.join(out_dir, "bench_gpu.json")))
except (OSError, ValueError) as exc:
    failed.append(f"bench: no bench_gpu.json ({type(exc).__name__})")
failed += [f"bench: {p}" for p in bench.get("problems", [])]
if not gpu:
    failed.insert(0, "no GPU: the cupy backend is unavailable here")
if dry_run:
    failed.insert(0, "dry run: the benchmark ran numpy against PyTorch CPU, not a GPU figure")
summary = {"status": "ok" if not failed else "failed", "gpu": gpu, "dry_run": dry_run, "seconds": seconds,
           "failed": failed, "steps": steps, "bench_problems": bench.get("problems", []),
           "workloads_measured": sorted(bench.get("workloads", {}))}
fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".summary.")
with os.fdopen(fd, "w") as f:
    f.write(json.dumps(summary, indent=2) + "\n")
os.chmod(tmp, 0o644)
os.replace(tmp, os.path.join(out_dir, "summary.json"))
print(f"=== summary ({seconds}s): {summary['status']}")
for name, s in steps.items():
    print(f"  {name}: {s['status']} ({s['seconds']}s){': ' + s['detail'] if s['detail'] else ''}")
for line in failed:
    print(f"  FAILED {line}")
raise SystemExit(0 if not failed else 1)
PYEOF
}

main 2>&1 | tee "$OUT_DIR/gpu_check.log"
exit "${PIPESTATUS[0]}"

#!/usr/bin/env bash
# The whole device check in one run, in under 8 minutes:
#   (a) what GPU this is (nvidia-smi, and what fastnet makes of it)
#   (b) install the project from this tree (no network needed)
#   (c) the GPU tests, then the rest of the suite
#   (d) the GPU benchmark against PyTorch
#   (e) a 1-rank NCCL smoke run (run before (d): it is quick) of `fastnet train --distributed nccl` (needs the [mpi] extra)
#
# Several GPUs: one machine can only smoke-test NCCL with one rank (NCCL cannot put two ranks
# on one GPU).  On a machine with G >= 2 GPUs, after `pip install 'fastnet[mpi,cuda12]'`
# (or cuda13), run from this folder:
#   mpiexec -n G python -m fastnet train --backend cupy --strict-backend --distributed nccl \
#       --dataset sample --limit 10000 --epochs 2 --quiet --out runs/nccl-G --overwrite
#   python -m pytest -q -p no:cacheprovider tests/test_distributed.py tests/test_distributed_cli.py
# The run must print one report naming "nccl: rank 0 of G", and its checkpoint must match
#   python -m fastnet train --backend cupy --dataset sample --limit 10000 --epochs 2 --out runs/one
# to float32 round-off.  Several nodes: add the launcher's host options (mpiexec -hosts a,b -ppn G).
# Logs and bench_gpu.json go to $OUT when set, else benchmarks/results/gpu_check.
# Every step runs under `timeout`; the step limits (seconds) can be lowered through
# GPU_CHECK_T_SMI, _INSTALL, _GPU_TESTS, _SUITE, _BENCH and the total through GPU_CHECK_DEADLINE.
# GPU_CHECK_SUITE picks the test paths of step (c)'s second half (default: tests/).
# Exit status: 0 when every step that ran succeeded (skipped GPU tests count as success).
set -u
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-benchmarks/results/gpu_check}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python}"
DEADLINE="${GPU_CHECK_DEADLINE:-465}"
FAILED=()
SUMMARY=()

# run_step NAME LIMIT COMMAND...: run under timeout, show and log the output, record the status.
run_step() {
  local name=$1 limit=$2 left rc
  shift 2
  left=$((DEADLINE - SECONDS))
  if [ "$left" -lt "$limit" ]; then limit=$left; fi
  if [ "$left" -lt 5 ]; then
    SUMMARY+=("$name: not run (out of time)")
    FAILED+=("$name")
    return
  fi
  echo "=== $name (limit ${limit}s)"
  timeout -k 5 "$limit" "$@" 2>&1 | tee "$OUT_DIR/$name.log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ]; then
    SUMMARY+=("$name: ok")
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    SUMMARY+=("$name: TIMED OUT after ${limit}s")
    FAILED+=("$name")
  else
    SUMMARY+=("$name: FAILED (exit $rc)")
    FAILED+=("$name")
  fi
}

# (a) the machine
if command -v nvidia-smi >/dev/null 2>&1; then
  run_step nvidia_smi "${GPU_CHECK_T_SMI:-15}" nvidia-smi
else
  echo "=== nvidia_smi: not found on this machine"
  SUMMARY+=("nvidia_smi: not found")
fi
run_step backends 60 "$PY" -c "
from fastnet.backends import availability, select_backend
for name, reason in availability().items():
    print(f'{name:>6}: ' + ('usable' if reason is None else reason))
print(select_backend('auto').message())
from fastnet.backends import get_backend, unavailable_reason
if unavailable_reason('cupy') is None:
    print(get_backend('cupy').describe())
"
# With the GPU hidden, the cupy backend must fall back and say why.
run_step hidden_gpu 60 env CUDA_VISIBLE_DEVICES= "$PY" -c "
from fastnet.backends import select_backend
print(select_backend('cupy').message())
"

# (b) install without network: no build isolation (it would download setuptools), no deps
here="$(pwd)/fastnet/__init__.py"
installed="$(cd / && "$PY" -c 'import fastnet; print(fastnet.__file__)' 2>/dev/null || true)"
if [ "$installed" = "$here" ]; then
  echo "=== install: fastnet from this tree is already importable"
  SUMMARY+=("install: already installed")
else
  run_step install "${GPU_CHECK_T_INSTALL:-45}" "$PY" -m pip install -q -e . --no-deps --no-build-isolation
fi
if ! "$PY" -c "import tqdm, hypothesis" >/dev/null 2>&1; then
  # Only where an index is reachable; the suite still runs without them where it can.
  timeout 20 "$PY" -m pip install -q tqdm hypothesis >/dev/null 2>&1 || echo "note: tqdm/hypothesis missing and not installable"
fi

# (c) the tests: GPU ones first (they are what this machine is for), then the rest
run_step gpu_tests "${GPU_CHECK_T_GPU_TESTS:-150}" "$PY" -m pytest -m gpu tests/ -q -rs -p no:cacheprovider
if [ -f "$OUT_DIR/gpu_tests.log" ]; then
  if grep -qE "[0-9]+ passed" "$OUT_DIR/gpu_tests.log"; then
    echo "GPU tests ran: $(grep -E '[0-9]+ (passed|failed)' "$OUT_DIR/gpu_tests.log" | tail -n 1)"
  elif grep -qE "[0-9]+ skipped" "$OUT_DIR/gpu_tests.log"; then
    reason="$(grep -m 1 -E '^SKIPPED' "$OUT_DIR/gpu_tests.log" | sed -E 's/^SKIPPED \[[0-9]+\] [^:]+:[0-9]+: //')"
    echo "GPU tests were skipped: $reason"
    SUMMARY+=("gpu_tests: all skipped ($reason)")
  fi
fi
read -r -a suite_paths <<< "${GPU_CHECK_SUITE:-tests/}"
run_step suite "${GPU_CHECK_T_SUITE:-120}" "$PY" -m pytest "${suite_paths[@]}" -m "not gpu" -q -p no:cacheprovider

# (e) NCCL with one rank: CuPy's NCCL binding, the MPI rendezvous, the trainer's rank-0 outputs
if command -v mpiexec >/dev/null 2>&1 && "$PY" -c "import mpi4py" >/dev/null 2>&1; then
  run_step nccl_smoke "${GPU_CHECK_T_NCCL:-90}" mpiexec -n 1 "$PY" -m fastnet train --backend cupy \
    --strict-backend --distributed nccl --dataset sample --limit 2000 --epochs 1 --quiet \
    --out "$OUT_DIR/nccl_smoke" --overwrite
else
  echo "=== nccl_smoke: not run (mpiexec or mpi4py missing: pip install 'fastnet[mpi]')"
  SUMMARY+=("nccl_smoke: not run (no mpiexec/mpi4py)")
fi


# (d) the benchmark
run_step bench "${GPU_CHECK_T_BENCH:-110}" "$PY" benchmarks/bench_gpu.py --out "$OUT_DIR"

echo "=== summary (${SECONDS}s; logs and JSON in $OUT_DIR)"
printf '  %s\n' "${SUMMARY[@]}"
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "failed: ${FAILED[*]}"
  exit 1
fi
exit 0

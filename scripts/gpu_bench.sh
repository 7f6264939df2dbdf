#!/usr/bin/env bash
# Issue 13's GPU checks in one run, under 8 minutes on one H100/H200:
#   1. tests/running/test_speed_gpu.py on CUDA: no host sync in any pretraining step (sync debug mode),
#      every attention fused, ECG-JEPA compiled once for all mask sizes;
#   2. `ecgbench bench` at the paper preset for ST-MEM and ECG-JEPA: eager and torch.compile,
#      bf16, batch doubled to the memory (--batch-size auto), MFU of both;
#   3. the same for NERULA, SimCLR and BYOL at the preset batch (SimCLR/BYOL 4,096: the
#      loader's busy fraction).
# Every figure lands in results/bench/<gpu>-paper-*-after.json (or $OUT when set, as on the lent
# machine) with the command that made it in gpu-bench-commands.txt beside it.
#
# Usage: scripts/gpu_bench.sh [out-dir]      (run from anywhere; uses .venv/bin/python if
# present, else python3 with ecgbench installed editable without dependencies)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-results/bench}}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
if ! "$python" -c "import ecgbench" 2>/dev/null; then
    "$python" -m pip install -q --no-deps --no-build-isolation -e . || exit 1
fi
gpu=$("$python" -c "import torch; print(torch.cuda.get_device_name(0).split()[1].lower())" 2>/dev/null) || {
    echo "gpu_bench: no CUDA device" >&2; exit 1; }
log="$out/gpu-bench-commands.txt"
: > "$log"
status=0

run() {  # run <seconds> <command...>: log the command, keep going when one part fails
    local limit=$1; shift
    echo "$ $*" | tee -a "$log"
    local clock=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$out/gpu-bench-output.txt"
    local rc=${PIPESTATUS[0]}
    echo "# exit $rc after $((SECONDS - clock)) s" | tee -a "$log"
    [ "$rc" -eq 0 ] || status=1
}

run 90 "$python" -m pytest tests/running/test_speed_gpu.py -q -p no:cacheprovider
for method in st-mem ecg-jepa; do  # one file each: a timeout costs one method, not both
    run 150 "$python" -m ecgbench bench --preset paper --device cuda --methods "$method" \
        --compile --batch-size auto --steps 10 --warmup 2 --probe-records 0 \
        --out "$out/$gpu-paper-$method-after.json"
done
run 90 "$python" -m ecgbench bench --preset paper --device cuda --methods simclr,byol,nerula \
    --steps 10 --warmup 2 --probe-records 0 --out "$out/$gpu-paper-cnn-after.json"
# BEFORE=<git revision>: the same eager figures from that revision's tree, on this device (about
# 2 more minutes; needs the .git folder). Its ecgbench is imported from an extracted copy.
if [ -n "${BEFORE:-}" ]; then
    before=$(mktemp -d)
    git archive "$BEFORE" | tar -x -C "$before" && mkdir -p "$before/shim" \
        && ln -s "$before/benchmark" "$before/shim/ecgbench" \
        && ln -s ../methods "$before/benchmark/methods" && ln -s ../tasks "$before/benchmark/tasks"
    PYTHONPATH="$before/shim" run 150 "$python" -m ecgbench bench --preset paper --device cuda \
        --methods st-mem,ecg-jepa,nerula --steps 10 --warmup 2 --probe-records 0 \
        --out "$out/$gpu-paper-before-$BEFORE.json"
fi
exit $status

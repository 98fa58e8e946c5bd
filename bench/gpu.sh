#!/usr/bin/env bash
# The throughput issue's GPU figures in one call, on a machine with a GPU and JAX (TensorFlow may be absent):
#   KERAS_BACKEND=jax REGBENCH_DATA_DIR=/path/to/data bash bench/gpu.sh [OUT]
# 1. the seed study end to end (process start to table; regbench's defaults: fused), target <= 8 s;
# 2. 256 variants of the seed MLP (bench/gpu_sweep.yaml: one fused model, 10 epochs of full MNIST), <= 40 s;
# 3. eight runs fused against one alone (bench/fused.py), <= 1.1x.
set -u
out=${1:-${OUT:-gpu-results}}
mkdir -p "$out"
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
python3 -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())" | tee "$out/device.txt"
timed() {  # name, command...: run it, keep its output, print its wall time and last lines
    local name=$1 start=$EPOCHREALTIME
    shift
    "$@" > "$out/$name.txt" 2>&1
    local code=$?
    echo "$name: exit $code, $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s (process start to end)" | tee -a "$out/$name.txt"
    tail -6 "$out/$name.txt"
}
timed seed_study python3 -m regbench run configs/dropout.yaml --threads 0 --out "$out/runs"
timed sweep_256 python3 -m regbench run bench/gpu_sweep.yaml --threads 0 --out "$out/runs"
timed fused python3 bench/fused.py --threads 0

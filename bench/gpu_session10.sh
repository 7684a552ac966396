#!/usr/bin/env bash
# What session 10's lent GPU machine ran (issue 15): the two code paths new since the last GPU check, on CUDA
# and against the CPU: `train --ema` (the moving average kept on the GPU) and `translate --shortlist` (the
# per-sentence output rows gathered and multiplied on the GPU). From the checkout's root, with the machine's
# own python3/torch; what the machine lacks travels in ignored folders (bench/gpu_setup.sh; .whl is enough here).
#   bash bench/gpu_session10.sh OUTDIR 2>&1 | tee OUTDIR/session.log
out=${1:-bench/out/gpu-session10}
. bench/gpu_setup.sh

step "1. LM and translation trained on the GPU with --ema (bf16 and fp16), used on GPU and CPU, --shortlist on both"
timeout 150 python3 bench/gpu.py --stages kinds --kinds lm,translation --precisions bf16,fp16 \
    --train-extra="--ema 0.99" --out /tmp/g-kinds
cp /tmp/g-kinds/results.json "$out/kinds.json" 2>/dev/null

step "2. the shortlist and --ema tests with --device auto picking the GPU where they let it"
timeout 60 python3 -m pytest -q -n 8 -p no:cacheprovider tests/kinds/translation/test_shortlist.py \
    tests/kinds/translation/test_translate_cli.py tests/training/test_training.py -k "shortlist or ema" \
    > "$out/pytest.log" 2>&1; echo "pytest exit $?"; grep -E "passed|failed|^FAILED|Error" "$out/pytest.log" | tail -15
step done

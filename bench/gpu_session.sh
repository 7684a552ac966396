#!/usr/bin/env bash
# What one lent GPU machine ran for issue 15 (15 minutes of device time, machine start included), from the
# checkout's root, with the machine's own python3/torch. The figures are in bench/RESULTS.md ("The GPU path").
#   bash bench/gpu_session.sh OUTDIR 2>&1 | tee OUTDIR/session.log
# Needs what the lent machine lacks, carried in ignored folders (bench/gpu_setup.sh).
out=${1:-bench/out/gpu-session}
. bench/gpu_setup.sh

step "1. fp16 training (autocast + loss scale) of the LM and translation kinds on the GPU, used on GPU and CPU"
timeout 90 python3 bench/gpu.py --stages kinds --kinds lm,translation --precisions fp16 --out /tmp/g-kinds
cp /tmp/g-kinds/results.json "$out/kinds.json" 2>/dev/null

step "2. Multi30k, the best recipe trained in fp16 (loss scale), 2 minutes on the GPU (val BLEU, greedy and beam 5)"
timeout 180 python3 bench/multi30k.py --recipe best-fp16 --max-time 2m --device cuda --threads 2 --json

step "3. that model decoding Multi30k val in every number format (GPU) and fp32/int8 (CPU, 2 threads)"
timeout 120 python3 bench/gpu.py --stages decode --out /tmp/g-decode  # 70 s cut off the CPU rows once
cp /tmp/g-decode/results.json "$out/decode.json" 2>/dev/null

step "4. the device-dependent tests with --device auto picking the GPU"
timeout 70 python3 -m pytest -q -n 14 -p no:cacheprovider tests/layers tests/decoding tests/kinds/translation \
    tests/kinds/lm tests/training/test_training.py tests/training/test_loss_scale.py tests/test_runtime.py \
    > "$out/pytest.log" 2>&1; echo "pytest exit $?"; grep -E "passed|failed|^FAILED|Error" "$out/pytest.log" | tail -15

step "5. training tokens/s on the GPU: fp16 against each recipe's own precision (200 steps; no CPU side)"
timeout 100 python3 bench/gpu.py --stages speed --speed-precisions fp16,recipe --speed-steps 200 --cpu-steps 0 \
    --out /tmp/g-speed
cp /tmp/g-speed/results.json "$out/speed.json" 2>/dev/null
step done

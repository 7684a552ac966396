# Sourced by the bench/gpu_session*.sh scripts on a lent GPU machine, from the checkout's root, with the
# machine's own python3/torch: installs what the image lacks from ignored folders carried along (.whl: the
# pure-Python wheels rnntool needs; .gpudata: Multi30k train/val and Tiny Shakespeare, linked where the benches
# look), makes OUTDIR ($out) and defines `step` (a timestamped heading per part).
set -u
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
mkdir -p ../shared && ln -sfn "$PWD/.gpudata" ../shared/data
nvidia-smi -L; python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'
step() { echo; echo "=== $(date -u +%T) $*"; }

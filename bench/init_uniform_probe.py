"""A probe, not a feature: `rnntool train ...` with every translation-model weight initialised uniform in
[-0.1, 0.1] (OpenNMT-py's `param_init: 0.1`) instead of torch's defaults (embeddings N(0, 1), LSTM and
linear layers +-1/sqrt(fan)), to test whether the initialisation is why rnntool's copy of OpenNMT-py's
recipe learns more slowly than OpenNMT-py (bench/RESULTS.md, "OpenNMT-py side by side").

    D=../shared/data/multi30k
    .venv/bin/python bench/init_uniform_probe.py train translate --src $D/train.en --tgt $D/train.de \\
        --valid-src $D/val.en --valid-tgt $D/val.de -o /tmp/probe --max-time 240s --threads 2 --seed 1 \\
        <bench/multi30k.py's "opennmt" recipe>

Everything after the script name is `rnntool`'s command line.
"""

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from rnntool.kinds.translation import model  # noqa: E402

_init = model.Seq2Seq.__init__


def uniform_init(self, cfg):
    _init(self, cfg)
    for p in self.parameters():
        torch.nn.init.uniform_(p, -0.1, 0.1)


model.Seq2Seq.__init__ = uniform_init
sys.argv = ["rnntool", *sys.argv[1:]]
runpy.run_module("rnntool", run_name="__main__")

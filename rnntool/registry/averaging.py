"""Checkpoint averaging (`rnntool models average`): the mean of several versions' weights as a new version.

    bundle = average_versions(registry, ["en-de@3", "en-de@4", "en-de@5"], name="en-de-avg")

The versions must be one model in all but its weights: the same kind, the same model configuration and the
same other files (tokenizers, vocabularies), so the averaged weights mean something (the last checkpoints
of one run, or runs that differ only in seed or data order). Every tensor is averaged in float64 and
stored in its own dtype. The new version's parents name the versions averaged; its metrics are empty
(evaluate it), its training log is the newest version's, and a translation's lexical table (which depends on
the data, not the weights) the newest that has one.
"""

from __future__ import annotations

import shutil

from rnntool.errors import UsageError
from rnntool.kinds.catalog import METRICS_FILE, SHORTLIST_FILE, WEIGHTS_FILE

_OWN_FILES = (WEIGHTS_FILE, METRICS_FILE, SHORTLIST_FILE)  # may differ between the versions averaged

_FLOAT_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}  # safetensors' names -> torch's


def average_versions(registry, refs: list[str], *, name: str, command: str | None = None):
    """Publish the mean of ``refs``' weights as the next version of ``name``; returns its Bundle."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from rnntool.layers.weights import read_safetensors_header

    if len(refs) < 2:
        raise UsageError("give at least two versions to average (e.g. en-de@3 en-de@4 en-de@5)")
    bundles = [registry.load(ref) for ref in refs]  # checksums verified: nothing corrupt is averaged
    first = bundles[0]
    if len({b.ref for b in bundles}) != len(bundles):
        raise UsageError("a version is named twice; give each version once")
    for b in bundles:
        if WEIGHTS_FILE not in b.files:
            raise UsageError(f"{b.ref} is a {b.kind} without weights; only trained models can be averaged")
        if b.kind != first.kind:
            raise UsageError(f"{b.ref} is a {b.kind} and {first.ref} a {first.kind}; average versions of one model")
        if (b.config.get("model") or {}) != (first.config.get("model") or {}):
            raise UsageError(f"{b.ref} and {first.ref} have different model settings; average versions of one "
                             "architecture (the last checkpoints of one run, or runs with another seed)")
        other = {rel: e["sha256"] for rel, e in b.files.items() if rel not in _OWN_FILES}
        mine = {rel: e["sha256"] for rel, e in first.files.items() if rel not in _OWN_FILES}
        if other != mine:
            differ = sorted(set(other.items()) ^ set(mine.items()))[0][0]
            raise UsageError(f"{b.ref} and {first.ref} differ in {differ}; averaged weights need the same "
                             "tokenizers and vocabularies")
    headers = [read_safetensors_header(b.file(WEIGHTS_FILE)) for b in bundles]
    for b, header in zip(bundles[1:], headers[1:]):
        if header != headers[0]:
            raise UsageError(f"{b.ref}'s weights have other tensors or shapes than {first.ref}'s")
    tensors: dict[str, torch.Tensor] = {}
    metadata = None
    for b in bundles:
        with safe_open(str(b.file(WEIGHTS_FILE)), framework="pt") as f:
            metadata = metadata if metadata is not None else f.metadata()
            for key in f.keys():
                t = f.get_tensor(key)
                if not t.is_floating_point():  # counters and indices: the first version's
                    tensors.setdefault(key, t)
                    continue
                tensors[key] = tensors[key] + t.double() if key in tensors else t.double()
    for key, (dtype, _) in headers[0].items():
        if tensors[key].dtype == torch.float64 and dtype != "F64":
            tensors[key] = (tensors[key] / len(bundles)).to(getattr(torch, _FLOAT_DTYPES[dtype]))
        elif tensors[key].dtype == torch.float64:
            tensors[key] = tensors[key] / len(bundles)
    by_age = sorted(bundles, key=lambda b: b.created or "", reverse=True)  # newest first
    newest = by_age[0]
    with registry.staging() as stage:
        save_file(tensors, str(stage / WEIGHTS_FILE), metadata=metadata or None)
        first.copy_files(stage, skip=_OWN_FILES)
        if METRICS_FILE in newest.files:  # the newest version's training log
            shutil.copyfile(newest.file(METRICS_FILE), stage / METRICS_FILE)
        table = next((b for b in by_age if SHORTLIST_FILE in b.files), None)
        if table is not None:  # and the newest lexical table
            shutil.copyfile(table.file(SHORTLIST_FILE), stage / SHORTLIST_FILE)
        parents = {f"averaged_{i + 1}": b.ref for i, b in enumerate(bundles)}
        parents.update({k: v for k, v in first.parents.items() if "tokenizer" in k})
        return registry.publish(stage, name=name, kind=first.kind, config=first.config, metrics={},
                                data=first.manifest.get("data"), parents=parents,
                                extra={"averaged": [b.ref for b in bundles]}, command=command)


__all__ = ["average_versions"]

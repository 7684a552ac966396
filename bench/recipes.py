"""What the benchmarks share: recipes as argument lists, picking them from the command line, budgets per
dataset (``15m,wnut=10m``), and running one `rnntool` command with a fresh registry (run_rnntool: the
recipe benchmarks; run_logged: the side-by-side ones, classify_vs_fasttext.py and tag_ewt_wnut.py).

Imported by the scripts in bench/ (their folder is on sys.path when they run as scripts).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path


def override(args: list[str], *changes: str) -> list[str]:
    """``args`` with options replaced where they stand: ``override(base, "--lr", "1e-3", "--no-x")``.

    A change is ``--flag VALUE`` when the base has ``--flag`` followed by a value, a bare flag
    otherwise; ``--x``/``--no-x`` replace each other. Options the base lacks are appended."""
    out = list(args)
    i = 0
    while i < len(changes):
        flag = changes[i]
        takes_value = i + 1 < len(changes) and not changes[i + 1].startswith("--")
        value = [changes[i + 1]] if takes_value else []
        i += 1 + len(value)
        twin = "--" + flag[len("--no-"):] if flag.startswith("--no-") else "--no-" + flag[2:]
        for k, a in enumerate(out):
            if a == flag and value:
                out[k + 1] = value[0]
                break
            if a in (flag, twin) and not value:
                out[k] = flag
                break
        else:
            out += [flag, *value]
    return out


def translate_seconds(stderr: str) -> float | None:
    """The seconds `rnntool translate` logs for its work ("translated N lines in S s": model loaded)."""
    m = re.search(r"translated \d+ lines in ([\d.]+)s", stderr)
    return float(m.group(1)) if m else None


def bleu_score(evaluate_json: str) -> float:
    """The BLEU score of `rnntool evaluate bleu --json`'s output."""
    data = json.loads(evaluate_json)
    return float(data["bleu"]["score"] if "bleu" in data else data["score"])


def pick(spec: str, recipes: dict, error) -> list[str]:
    """Recipe names from ``--recipe``: one name, a comma-separated list, or ``all``."""
    names = list(recipes) if spec == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in recipes]
    if unknown or not names:
        error(f"unknown recipe {unknown[0] if unknown else spec!r}; choose from {', '.join(recipes)}, "
              "a comma-separated list, or all")
    return names


def run_rnntool(cmd: list[str], out: Path, threads: int | None = None) -> dict | None:
    """Run ``rnntool ...`` (printed first) with a fresh registry in ``out/registry``; its stderr goes to
    ``out/stderr.log``. Returns the JSON summary it prints (``--json``), or None when it failed."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "registry", ignore_errors=True)
    print(f"$ RNNTOOL_HOME={out / 'registry'} {shlex.join(cmd)}", flush=True)
    env = {**os.environ, "RNNTOOL_HOME": str(out / "registry")}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    r = subprocess.run([sys.executable, "-m", "rnntool", *cmd[1:]], env=env, capture_output=True, text=True)
    (out / "stderr.log").write_text(r.stderr)
    if r.returncode != 0:
        tail = r.stderr.strip().splitlines()[-1:] or ["(no message)"]
        print(f"  failed (exit {r.returncode}): {tail[0]}; log in {out / 'stderr.log'}", flush=True)
        return None
    return json.loads(r.stdout) if r.stdout.strip() else {}


def run_logged(cmd: list[str], log_dir: Path, tag: str, threads: int, json_out: bool = True) -> tuple[dict | None, float, str]:
    """Run ``rnntool ...`` (printed first, with its environment) with a fresh registry under ``log_dir``;
    returns (its JSON summary, or {} without --json, or None when it failed; wall seconds; its stderr)."""
    registry = log_dir / f"registry-{tag}"
    shutil.rmtree(registry, ignore_errors=True)
    env = {**os.environ, "RNNTOOL_HOME": str(registry), "OMP_NUM_THREADS": str(threads)}
    print(f"$ RNNTOOL_HOME={registry} OMP_NUM_THREADS={threads} {shlex.join(cmd)}", flush=True)
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "rnntool", *cmd[1:]], env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)  # never a terminal: line commands batch as in a script
    seconds = time.perf_counter() - start
    (log_dir / f"{tag}.stderr.log").write_text(r.stderr)
    if r.returncode != 0:
        print(f"  failed (exit {r.returncode}) after {seconds:.1f}s; its stderr ends:", flush=True)
        for line in r.stderr.strip().splitlines()[-8:] or ["(nothing)"]:
            print(f"    {line}")
        return None, seconds, r.stderr
    if not json_out:
        return {}, seconds, r.stderr
    return (json.loads(r.stdout) if r.stdout.strip() else {}), seconds, r.stderr


def per_dataset(spec: str, names: list[str], known, option: str, error) -> dict[str, str]:
    """``15m`` (every dataset in ``names``) or ``15m,wnut=10m`` / ``ewt=15m,wnut=10m`` (per dataset, each one
    of ``known``); ``error(message)`` for a bad spec (argparse's)."""
    default, out = None, {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if "=" in part:
            key, value = (s.strip() for s in part.split("=", 1))
            if key not in known:
                error(f"{option}: unknown dataset {key!r} (choose from {', '.join(known)})")
            out[key] = value
        else:
            default = part
    missing = [n for n in names if n not in out and default is None]
    if missing:
        error(f"{option}: no budget for {missing[0]}")
    return {n: out.get(n, default) for n in names}


def budgets(per: dict[str, str]) -> str:
    values = set(per.values())
    return values.pop() if len(values) == 1 else ", ".join(f"{n} {v}" for n, v in per.items())

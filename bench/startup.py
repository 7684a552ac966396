"""Start-up time of `rnntool` commands that load no model: what a shell user waits for on every `--help` and
every mistyped option. The brief's target: `rnntool --help` well under 0.3 s, without importing torch.

    .venv/bin/python bench/startup.py                       # 20 rounds
    .venv/bin/python bench/startup.py --against 2960069     # also the code at a commit, interleaved

Each round runs every command once, in turn (so a busy moment hits them all alike); the figures are the
median and the fastest of the rounds (after one round that warms up), wall time of the whole process, run
as `python -m rnntool` (what the `rnntool` console script runs too). `python -c pass` and
`python -c "import typer"` are the floors: the interpreter alone, and the CLI library rnntool is built on.
With --against, that commit's code (a temporary git worktree, the same interpreter and packages) runs
side by side, and the ratio is printed. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "python -c 'import typer'": ["-c", "import typer"],
    "rnntool --help": ["-m", "rnntool", "--help"],
    "rnntool train lm --help": ["-m", "rnntool", "train", "lm", "--help"],
    "rnntool models list --help": ["-m", "rnntool", "models", "list", "--help"],
    "rnntool --version": ["-m", "rnntool", "--version"],
}


def time_once(args: list[str], cwd: Path) -> float:
    """Wall seconds of ``python ARGS`` run in ``cwd`` (``-m rnntool`` imports the rnntool found there)."""
    start = time.perf_counter()
    r = subprocess.run([sys.executable, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       env={**os.environ, "COLUMNS": "100"})
    seconds = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{shlex.join(args)} failed (exit {r.returncode}): {r.stderr.decode()[-500:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20, help="runs of each command (default 20)")
    ap.add_argument("--against", metavar="COMMIT", help="also time this commit's code, side by side")
    args = ap.parse_args()
    print("\n".join(machine_info(threads="-")))
    print(f"$ {shlex.join([sys.executable, *sys.argv])}")
    sides = {"now": REPO}
    tree = None
    if args.against:
        tree = Path(tempfile.mkdtemp(prefix="rnntool-startup-")) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-f", "--detach", str(tree), args.against],
                       check=True, capture_output=True)
        sides[args.against] = tree
    try:
        times: dict[tuple[str, str], list[float]] = {}
        for round_no in range(args.rounds + 1):  # round 0 warms up (a fresh worktree compiles its .pyc files)
            for name, cmd in COMMANDS.items():
                for side, root in sides.items():
                    if side != "now" and cmd[:2] != ["-m", "rnntool"]:
                        continue  # the floors do not depend on the code
                    seconds = time_once(cmd, root)
                    if round_no:
                        times.setdefault((name, side), []).append(seconds)
    finally:
        if tree is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
    print(f"\n{args.rounds} rounds; wall seconds of the whole process\n")
    print("| command | code | median s | fastest s |" + (f" median vs {args.against} |" if args.against else ""))
    print("|---|---|---:|---:|" + ("---:|" if args.against else ""))
    for (name, side), values in times.items():
        row = f"| `{name}` | {side} | {statistics.median(values):.3f} | {min(values):.3f} |"
        if args.against:
            base = times.get((name, args.against))
            row += f" {statistics.median(values) / statistics.median(base):.2f}x |" if base and side == "now" else " |"
        print(row)


if __name__ == "__main__":
    main()

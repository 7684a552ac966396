"""Reliability: training runs killed at random moments and resumed, and concurrent publishers.

    .venv/bin/python bench/reliability.py                                   # 30 rounds; 8 x 50 publishes
    .venv/bin/python bench/reliability.py --rounds 3 --publishers 2 --per-publisher 5   # a smoke test

Everything runs on a temporary registry (RNNTOOL_HOME in a temporary directory, removed afterwards
unless --keep) with generated data: an English-like corpus of a few hundred lines (about 60 words).

(a) Kill and resume. A cron-like command

    rnntool train lm DATA --valid VALID --name rel --run-dir RUNS/rN --promote prod --max-steps K ...

is started as a subprocess and SIGKILLed at a random moment. One uninterrupted run is timed first
(and the registry polled while it runs, to see when its version appears); then round N (--seed N, so
that some new versions beat @prod and some do not) picks its kill moment uniformly over that
duration, except a third of the rounds, which pick it in the last 15% (the publish window). After
the kill, `rnntool train lm --resume RUNS/rN` (nothing else: the resumed run must do what the
original asked, --promote included) is run until it exits 0. A kill that came before the run
recorded its settings (run.json) leaves nothing to resume: then the original command is run again
("restart"); so it is, counted as a failure, when --resume refuses a run directory that has run.json
but no checkpoint yet. A kill is classed by what the registry shows before the resume: "before
publish" (no new version), "during publish" (the round's version is there although the process had
not finished: moving the alias, recording, exiting) or "after" (the process had exited by itself
before the kill moment: nothing was killed).

After every round: `rnntool models verify` exits 0; the round added exactly one version and no run
has two versions (each manifest names its run in `extra.run_id`; a version without one is counted
as unknown); `@prod` points to the newest version whose manifest says `extra.promotion.promoted`,
and every version of the round records a promotion decision; no published version diverged
(non-finite metrics, a loss over 10x that of a uniform guess, or stop_reason "diverged").

(b) Concurrent publishers. P worker processes (multiprocessing, spawn) each publish K versions of
one name through `rnntool.registry.store.Registry.publish` directly (a tokenizer bundle; no subprocess per
publish, so the registry's locking is what is measured), all starting at once. Then: versions are
exactly 1..P*K, each (publisher, i) landed exactly once, and `rnntool models verify` exits 0.

The script exits 1 if any check failed, and prints every command it ran and every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import machine_info  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NAME = "rel"
PUB_NAME = "conc"
MODEL_ARGS = ["--vocab-size", "300", "--layers", "1", "--embed-dim", "16", "--hidden-dim", "16",
              "--batch-size", "8", "--bptt", "16", "--dropout", "0"]
LATE_SHARE = 1 / 3  # rounds whose kill lands in the last LATE_WINDOW of a run
LATE_WINDOW = 0.15
MAX_RESUMES = 5
BEFORE = "before publish (no new version)"
DURING = "during publish (its version there, the process not done: alias, records, exit)"
AFTER = "after (the run finished before the kill moment)"
DIVERGENCE_FACTOR = 10.0  # as rnntool/training/loop.py: a loss this many times ln(V) is a diverged run


# -- data -----------------------------------------------------------------------------------------
def make_corpus(path: Path, lines: int, seed: int) -> None:
    """English-like lines from a small grammar (as tests/conftest.py's corpus): about 60 words."""
    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "my friend", "the old man", "a child", "the teacher", "she", "he"]
    verbs = ["sees", "likes", "finds", "follows", "paints", "watches", "calls", "helps"]
    objects = ["the ball", "a red house", "the river", "a small bird", "the green tree", "her brother",
               "the city", "a blue car"]
    tails = ["today", "in the morning", "at night", "again", "near the school", "with joy", "", ""]
    out = []
    for _ in range(lines):
        line = f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} {rng.choice(tails)}".strip()
        out.append(line[0].upper() + line[1:] + ".")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


# -- the registry, read directly (what a user would see with ls and cat) --------------------------
def model_dir(home: Path, name: str) -> Path:
    return home / "models" / name


def versions(home: Path, name: str) -> dict[int, dict]:
    """version -> manifest (None when the manifest is missing or unreadable)."""
    out: dict[int, dict] = {}
    d = model_dir(home, name)
    if not d.is_dir():
        return out
    for p in d.iterdir():
        if p.name.isdigit():
            try:
                out[int(p.name)] = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                out[int(p.name)] = None
    return out


def alias(home: Path, name: str, a: str) -> int | None:
    try:
        return int((model_dir(home, name) / "aliases" / a).read_text().strip())
    except (OSError, ValueError):
        return None


def extra(manifest: dict | None) -> dict:
    return (manifest or {}).get("extra") or {}


def staging_left(home: Path) -> int:
    d = home / ".staging"
    return sum(1 for _ in d.iterdir()) if d.is_dir() else 0


# -- running rnntool ------------------------------------------------------------------------------
class Runner:
    def __init__(self, home: Path, threads: int) -> None:
        self.home = home
        self.env = {**os.environ, "RNNTOOL_HOME": str(home), "OMP_NUM_THREADS": str(threads),
                    "MKL_NUM_THREADS": str(threads), "NO_COLOR": "1"}
        self.env.pop("RNNTOOL_DEBUG", None)

    def shown(self, args: list[str]) -> str:
        return f"RNNTOOL_HOME={shlex.quote(str(self.home))} rnntool {shlex.join(args)}"

    def start(self, args: list[str]) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "rnntool", *args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rnntool", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)


def last_line(text: str) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(nothing)"


# -- (a) kill and resume --------------------------------------------------------------------------
class Tally:
    def __init__(self) -> None:
        self.rounds = 0
        self.kills = {BEFORE: 0, DURING: 0, AFTER: 0}
        self.resumes = 0
        self.max_resumes = 0
        self.restarts = 0
        self.resume_failures = 0
        self.no_checkpoint_refusals = 0
        self.verify_failures = 0
        self.duplicates = 0
        self.missing_versions = 0
        self.unknown_run_id = 0
        self.wrong_promotions = 0
        self.missing_promotions = 0
        self.diverged = 0
        self.unfinished = 0
        self.problems: list[str] = []

    def fail(self, what: str) -> None:
        self.problems.append(what)
        print(f"  FAILED: {what}", flush=True)


def diverged(manifest: dict) -> str | None:
    m = manifest.get("metrics") or {}
    for key in ("val_loss", "val_ppl", "val_bpc"):
        v = m.get(key)
        if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"{key} is {v!r}"
    if "diverg" in str(m.get("stop_reason", "")):
        return f"stop_reason {m.get('stop_reason')!r}"
    vocab = ((manifest.get("config") or {}).get("model") or {}).get("vocab_size")
    if vocab and m["val_loss"] > DIVERGENCE_FACTOR * math.log(vocab):
        return f"val_loss {m['val_loss']:.4g} is over {DIVERGENCE_FACTOR:g}x ln({vocab})"
    return None


def check_registry(runner: Runner, t: Tally, before: dict[int, dict], label: str) -> str:
    """The checks after a round; returns a short summary for its line."""
    r = runner.run(["models", "verify", "-q"])
    if r.returncode != 0:
        t.verify_failures += 1
        t.fail(f"{label}: `rnntool models verify` exited {r.returncode}: {last_line(r.stderr or r.stdout)}")
    now = versions(runner.home, NAME)
    new = sorted(set(now) - set(before))
    if len(new) == 0:
        t.missing_versions += 1
        t.fail(f"{label}: the round published no version")
    elif len(new) > 1:
        t.duplicates += len(new) - 1
        t.fail(f"{label}: the round published {len(new)} versions: {', '.join(f'{NAME}@{v}' for v in new)}")
    by_run: dict[str, list[int]] = {}
    unknown = 0
    for v, man in now.items():
        rid = extra(man).get("run_id")
        if rid is None:
            unknown += 1
        else:
            by_run.setdefault(rid, []).append(v)
    for rid, vs in by_run.items():
        if len(vs) > 1 and any(v in new for v in vs):
            t.fail(f"{label}: run {rid} published {len(vs)} versions: {sorted(vs)}")
            if len(new) <= 1:  # not already counted above
                t.duplicates += len(vs) - 1
    t.unknown_run_id = unknown
    for v in new:
        man = now[v]
        if man is None:
            t.fail(f"{label}: {NAME}@{v} has no readable manifest")
            continue
        why = diverged(man)
        if why:
            t.diverged += 1
            t.fail(f"{label}: {NAME}@{v} diverged and was published: {why}")
        if not isinstance(extra(man).get("promotion"), dict):
            t.missing_promotions += 1
            t.fail(f"{label}: {NAME}@{v} records no promotion decision (--promote prod was asked)")
    promoted = [v for v, man in now.items() if (extra(man).get("promotion") or {}).get("promoted") is True]
    prod = alias(runner.home, NAME, "prod")
    expected = max(promoted, default=None)
    if prod is None or prod not in now or not (extra(now[prod]).get("promotion") or {}).get("promoted"):
        t.wrong_promotions += 1
        t.fail(f"{label}: @prod -> {prod}, whose manifest does not say it was promoted")
    elif prod != expected:
        t.wrong_promotions += 1
        t.fail(f"{label}: @prod -> {prod}, but the newest promoted version is {expected}")
    return (f"verify {'ok' if r.returncode == 0 else 'FAILED'}; new {', '.join(map(str, new)) or 'none'}; "
            f"@prod -> {prod}; unknown run_id {unknown}")


def calibrate(runner: Runner, command: list[str], run_dir: Path) -> tuple[float, dict[str, float], subprocess.Popen]:
    """One uninterrupted run: its duration and when (polled) its run.json, first checkpoint and version appeared."""
    before = set(versions(runner.home, NAME))
    marks: dict[str, float] = {}
    t0 = time.monotonic()
    p = runner.start(command)
    while p.poll() is None:
        now = time.monotonic() - t0
        if "run.json" not in marks and (run_dir / "run.json").exists():
            marks["run.json"] = now
        if "first checkpoint" not in marks and (run_dir / "checkpoint").exists():
            marks["first checkpoint"] = now
        if "version" not in marks and set(versions(runner.home, NAME)) - before:
            marks["version"] = now
        time.sleep(0.01)
    duration = time.monotonic() - t0
    p.communicate()
    return duration, marks, p


def kill_and_resume(args, runner: Runner, work: Path, data: Path, valid: Path, t: Tally) -> None:
    runs = work / "runs"

    def command(n: int) -> list[str]:
        return ["train", "lm", str(data), "--valid", str(valid), "--name", NAME, "--run-dir", str(runs / f"r{n}"),
                "--max-steps", str(args.steps), "--eval-every", str(args.eval_every), "--promote", "prod",
                "--seed", str(n), *MODEL_ARGS, "-q"]  # a seed per round: some new versions win, some lose

    print("\n== (a) kill at a random moment, then --resume until it exits 0", flush=True)
    print(f"$ {runner.shown(command(0))}", flush=True)
    duration, marks, p = calibrate(runner, command(0), runs / "r0")
    if p.returncode != 0:
        t.fail(f"the calibration run exited {p.returncode}: {last_line(p.stderr)}")
        return
    seen = "; ".join(f"{k} at {v:.2f}s ({v / duration:.2f})" for k, v in marks.items()) or "nothing seen by polling"
    print(f"calibration run: {duration:.2f}s; appeared (polled every 10 ms): {seen}", flush=True)
    check_registry(runner, t, {}, "calibration")
    print(f"each round: $ {runner.shown(command(1)).replace('/r1 ', '/rN ').replace('--seed 1 ', '--seed N ')}",
          flush=True)
    print(f"then, until it exits 0: $ {runner.shown(['train', 'lm', '--resume', str(runs / 'rN'), '-q'])}", flush=True)
    print("(a restart, when the kill came before RUNS/rN/run.json was written: the first command again)", flush=True)

    rng = random.Random(args.seed)
    late = set(rng.sample(range(1, args.rounds + 1), math.ceil(args.rounds * LATE_SHARE))) if args.rounds else set()
    for n in range(1, args.rounds + 1):
        label = f"round {n}"
        kind = "late" if n in late else "uniform"
        when = rng.uniform((1 - LATE_WINDOW) * duration, duration) if kind == "late" else rng.uniform(0, duration)
        before = versions(runner.home, NAME)
        t0 = time.monotonic()
        p = runner.start(command(n))
        try:
            p.wait(timeout=when)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
            p.send_signal(signal.SIGKILL)  # the process this round started, by its pid
            p.wait()
        elapsed = time.monotonic() - t0
        p.communicate()
        t.rounds += 1
        if finished:
            how = AFTER
            if p.returncode != 0:
                t.fail(f"{label}: the run exited {p.returncode} before the kill: {last_line(p.stderr)}")
        else:
            how = DURING if set(versions(runner.home, NAME)) - set(before) else BEFORE
        t.kills[how] += 1
        staging = staging_left(runner.home)
        resumes = restarts = 0
        refused = False  # --resume refused the run directory: restart it with the first command
        rc = p.returncode if finished else None
        outcome = "exit 0" if rc == 0 else ""
        while rc != 0:
            if resumes + restarts >= MAX_RESUMES:
                t.unfinished += 1
                t.fail(f"{label}: still not done after {MAX_RESUMES} resumes and restarts")
                break
            run_dir = runs / f"r{n}"
            if (run_dir / "run.json").exists() and not refused:
                r = runner.run(["train", "lm", "--resume", str(run_dir), "-q"])
                resumes += 1
                if r.returncode != 0:
                    t.resume_failures += 1
                    t.fail(f"{label}: resume exited {r.returncode}: {last_line(r.stderr)}")
                    if not (run_dir / "checkpoint").exists():
                        t.no_checkpoint_refusals += 1
                        refused = True
            else:
                r = runner.run(command(n))
                restarts += 1
                if r.returncode != 0:
                    t.resume_failures += 1
                    t.fail(f"{label}: restart exited {r.returncode}: {last_line(r.stderr)}")
            rc = r.returncode
            outcome = last_line(r.stdout or r.stderr)
        t.resumes += resumes
        t.restarts += restarts
        t.max_resumes = max(t.max_resumes, resumes + restarts)
        summary = check_registry(runner, t, before, label)
        short = "not killed, finished" if how == AFTER else f"killed {how.split(' (')[0]}"
        print(f"{label}: kill {kind} at {when:.2f}s ({when / duration:.2f}), {short} at {elapsed:.2f}s; "
              f"staging left {staging}; resumes {resumes}, restarts {restarts}: {outcome[:160]}; {summary}",
              flush=True)

    print("\n(a) results", flush=True)
    print(f"rounds: {t.rounds} (kills aimed at the last {LATE_WINDOW:.0%}: {len(late)})")
    for k, v in t.kills.items():
        print(f"kills {k}: {v}")
    print(f"resumes needed: {t.resumes} (most in one round, restarts included: {t.max_resumes}); "
          f"restarts (killed before run.json): {t.restarts}")
    print(f"resume/restart failures (a non-zero exit): {t.resume_failures}, of which --resume refused a run "
          f"killed after run.json but before its first checkpoint: {t.no_checkpoint_refusals} (then restarted)")
    print(f"rounds never finished: {t.unfinished}")
    print(f"registry verify failures: {t.verify_failures}")
    print(f"duplicate publishes: {t.duplicates}")
    print(f"versions without extra.run_id (unknown run) at the end: {t.unknown_run_id}")
    print(f"rounds without a version: {t.missing_versions}")
    print(f"wrong promotions (@prod): {t.wrong_promotions}; versions without a promotion decision: "
          f"{t.missing_promotions}")
    print(f"diverged versions published: {t.diverged}", flush=True)


# -- (b) concurrent publishers --------------------------------------------------------------------
def _publisher(home: str, model_file: str, publisher: int, count: int, start, errors) -> None:
    from rnntool.registry.store import Registry

    reg = Registry.open(home)
    data = Path(model_file).read_bytes()
    start.wait()
    for i in range(count):
        try:
            with reg.staging() as tmp:
                (tmp / "tokenizer.model").write_bytes(data)
                reg.publish(tmp, name=PUB_NAME, kind="tokenizer", config={}, metrics={},
                            extra={"publisher": publisher, "i": i})
        except Exception as e:  # counted and reported by the parent
            errors.put(f"publisher {publisher} #{i}: {type(e).__name__}: {e}")


def concurrent_publishes(args, runner: Runner, work: Path, data: Path) -> list[str]:
    from rnntool.tokenizers.training import train_tokenizer

    problems: list[str] = []
    total = args.publishers * args.per_publisher
    print(f"\n== (b) {args.publishers} processes x {args.per_publisher} publishes of '{PUB_NAME}' at once", flush=True)
    print("how: multiprocessing (spawn) workers calling rnntool.registry.store.Registry.publish directly, "
          "one tokenizer bundle per publish (no rnntool subprocess per publish)", flush=True)
    model = work / "tok.model"
    train_tokenizer([data], model, vocab_size=300, seed=0)
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    errors = ctx.Queue()
    procs = [ctx.Process(target=_publisher, args=(str(runner.home), str(model), p, args.per_publisher, start, errors))
             for p in range(args.publishers)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # let every worker import and open the registry before the start signal
    t0 = time.monotonic()
    start.set()
    for p in procs:
        p.join()
    seconds = time.monotonic() - t0
    errs = []
    while not errors.empty():
        errs.append(errors.get())
    for p in procs:
        if p.exitcode != 0:
            problems.append(f"a publisher process exited {p.exitcode}")
    problems += errs[:10]
    now = versions(runner.home, PUB_NAME)
    got = sorted(now)
    seen: dict[tuple, list[int]] = {}
    for v, man in now.items():
        e = extra(man)
        seen.setdefault((e.get("publisher"), e.get("i")), []).append(v)
    dups = {k: vs for k, vs in seen.items() if len(vs) > 1}
    missing = [(p, i) for p in range(args.publishers) for i in range(args.per_publisher) if (p, i) not in seen]
    gaps = sorted(set(range(1, total + 1)) - set(got))
    beyond = [v for v in got if v > total]
    r = runner.run(["models", "verify", PUB_NAME, "-q"])
    print(f"$ {runner.shown(['models', 'verify', PUB_NAME, '-q'])}: exit {r.returncode}", flush=True)
    print(f"publishes: {total} in {seconds:.2f}s ({total / seconds:.1f}/s); errors: {len(errs)}")
    lo, hi = (got[0], got[-1]) if got else (None, None)
    print(f"versions: {len(got)} (expected {total}); lowest {lo}, highest {hi}")
    print(f"gaps in 1..{total}: {len(gaps)}{(' e.g. ' + str(gaps[:10])) if gaps else ''}; versions above {total}: "
          f"{len(beyond)}")
    print(f"publishes landed twice: {len(dups)}; publishes missing: {len(missing)}")
    print(f"models verify: {'ok' if r.returncode == 0 else 'FAILED: ' + last_line(r.stderr or r.stdout)}", flush=True)
    if len(got) != total or gaps or beyond:
        problems.append(f"versions are not exactly 1..{total}: {len(got)} versions, {len(gaps)} gaps, "
                        f"{len(beyond)} above {total}")
    if dups or missing:
        problems.append(f"{len(dups)} publishes landed twice, {len(missing)} are missing")
    if r.returncode != 0:
        problems.append(f"`rnntool models verify {PUB_NAME}` exited {r.returncode}")
    for p in problems:
        print(f"  FAILED: {p}", flush=True)
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, metavar="N", default=30, help="kill/resume rounds (0: skip part a)")
    ap.add_argument("--steps", type=int, metavar="K", default=400, help="--max-steps of each training run")
    ap.add_argument("--eval-every", type=int, metavar="E", default=50,
                    help="--eval-every of each training run (a checkpoint each)")
    ap.add_argument("--publishers", type=int, metavar="P", default=8,
                    help="concurrent publisher processes (0: skip part b)")
    ap.add_argument("--per-publisher", type=int, metavar="K", default=50, help="publishes per publisher process")
    ap.add_argument("--threads", type=int, metavar="T", default=1, help="torch threads of each rnntool process")
    ap.add_argument("--seed", type=int, metavar="S", default=0, help="seed of the kill moments")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (printed) for inspection")
    args = ap.parse_args()
    if args.rounds < 0 or args.publishers < 0 or args.per_publisher < 1 or args.steps < 1 or args.eval_every < 1:
        ap.error("--rounds and --publishers must be >= 0; --per-publisher, --steps, --eval-every >= 1")

    print("\n".join(machine_info(args.threads)), flush=True)
    print(f"$ {shlex.join([sys.executable, *sys.argv])}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="rnntool-reliability-"))
    print(f"work directory: {work} (registry: {work / 'registry'})", flush=True)
    runner = Runner(work / "registry", args.threads)
    data, valid = work / "train.txt", work / "valid.txt"
    make_corpus(data, 400, seed=1)
    make_corpus(valid, 60, seed=2)
    print(f"data: {data} (400 lines), {valid} (60 lines), {len(set(data.read_text().split()))} distinct words",
          flush=True)
    t = Tally()
    problems: list[str] = []
    t_start = time.monotonic()
    try:
        if args.rounds:
            kill_and_resume(args, runner, work, data, valid, t)
            problems += t.problems
        if args.publishers:
            problems += concurrent_publishes(args, runner, work, data)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ntotal time: {time.monotonic() - t_start:.1f}s")
    print(f"result: {'FAILED, ' + str(len(problems)) + ' problems' if problems else 'all checks passed'}", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

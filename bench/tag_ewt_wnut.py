"""UD English EWT (UPOS) and WNUT-17 (NER): `rnntool train tag` in four configurations side by side in one
run: words only, + a character encoder, + a CRF, words only + a CRF. Dev token accuracy (EWT) and entity
span F1 (WNUT-17, iob2) with their bootstrap 95% intervals, training seconds and tagging words/s.

    .venv/bin/python bench/tag_ewt_wnut.py                                   # both sets, 4 configs, 15m each: ~2h10m
    .venv/bin/python bench/tag_ewt_wnut.py --budget 15m,wnut=10m --out bench/out/tag
    .venv/bin/python bench/tag_ewt_wnut.py --datasets wnut --configs chars,crf --budget 10m
    .venv/bin/python bench/tag_ewt_wnut.py --limit 200 --budget 15s --configs words,chars   # smoke, ~1-2 minutes

The data is read in place from ../shared/data (never copied into the repository):

- EWT: ud-ewt/en_ewt-ud-train.conllu (12,544 sentences) and en_ewt-ud-dev.conllu (2,001 sentences, 25,147
  words), CoNLL-U, the UPOS column. Key figure: token accuracy.
- WNUT-17: wnut17/train.conll (3,394 sentences) and dev.conll (1,009 sentences, 15,733 words),
  token<TAB>tag, IOB2 with 6 entity types. Key figure: entity span F1 (conlleval's, scheme iob2).

With --limit N the first N training sentences (split on blank lines, comment lines kept) go to a temporary
file. `rnntool train tag --valid` and `evaluate tags -m` refuse a dev set with a tag the model was not
trained on, and the first few hundred sentences lack some (EWT: SYM, X; WNUT-17: I-product), so with
--limit the dev set is also cut to the sentences whose tags all occur in those N (printed; smoke runs only).

Configurations (CONFIGS below), each on the dataset's recipe (RECIPES below):
  words      --char-hidden 0            word embeddings only (unseen words share one vector)
  chars      (the recipe)               + a character BiLSTM per word (rnntool's default)
  crf        --crf                      + a CRF output layer (with the character encoder)
  words-crf  --char-hidden 0 --crf      words only + a CRF

Per configuration, each command printed and run with a fresh registry (RNNTOOL_HOME):
  - `rnntool train tag TRAIN --valid DEV -o DIR --max-time BUDGET --threads T --seed S --json ...`;
  - `rnntool evaluate tags -m DIR DEV --json` (token accuracy; for WNUT-17 span precision/recall/F1; the
    bootstrap 95% interval of the key figure);
  - tagging speed: the dev sentences as one-sentence-per-line text (tokens joined by spaces) repeated to
    at least --tag-words words (default 20,000; 2,000 with --limit), `rnntool tag -m DIR FILE --format
    lines -o OUT` at --batch-size 1 and at the default batch (32 when not on a terminal), timed from outside
    (the whole command: Python start-up and model loading included) and as it logs itself ("tagged N
    sentences, W words in Xs": reading, tagging, writing).

Threads: training gets --threads (default 2); `tag` and `evaluate tags` have no --threads option and get
OMP_NUM_THREADS=--threads. On a machine with other processes on the cores, multi-threaded torch slows down
by large and random factors (the load average is printed at the start and the end).

Published references (on the TEST sets, which this benchmark does not use; dev figures are not comparable
one-to-one): EWT UPOS BiLSTM 94.6-95.0 (Plank et al., 2016), Stanza 95.4; WNUT-17 entity F1 41.9 (the
shared-task winner), 40.8 (second). CPU tagging speeds for context: spaCy en_core_web_lg ~10,000 words/s,
Stanza ~900, Flair ~300.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from machine import machine_info  # bench/ is on sys.path when run as a script
from recipes import budgets, override, per_dataset, run_logged

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"

# Per dataset: the recipe of `rnntool train tag` (the "chars" configuration; CONFIGS change it).
RECIPES: dict[str, list[str]] = {
    "ewt": ["--embed-dim", "100", "--char-hidden", "64", "--hidden-dim", "256", "--layers", "2",
            "--dropout", "0.33", "--batch-size", "32", "--lr", "2e-3", "--schedule", "cosine",
            "--eval-every", "400", "--min-count", "2"],
    # no --lowercase: case matters for NER
    "wnut": ["--embed-dim", "100", "--char-hidden", "64", "--hidden-dim", "256", "--layers", "1",
             "--dropout", "0.5", "--batch-size", "16", "--lr", "2e-3", "--schedule", "cosine",
             "--select", "span-f1", "--eval-every", "200"],
}

# name -> (table label, changes to the recipe, as recipes.override takes them)
CONFIGS: dict[str, tuple[str, list[str]]] = {
    "words": ("words only", ["--char-hidden", "0"]),
    "chars": ("+ char BiLSTM", []),
    "crf": ("+ char BiLSTM + CRF", ["--crf"]),
    "words-crf": ("words only + CRF", ["--char-hidden", "0", "--crf"]),
}

DATASETS: dict[str, dict] = {
    "ewt": {"train": "ud-ewt/en_ewt-ud-train.conllu", "dev": "ud-ewt/en_ewt-ud-dev.conllu", "format": "conllu",
            "title": "UD English EWT, UPOS", "key": "token_accuracy", "key_name": "token accuracy",
            "evaluate": []},
    "wnut": {"train": "wnut17/train.conll", "dev": "wnut17/dev.conll", "format": "conll",
             "title": "WNUT-17 NER", "key": "f1", "key_name": "entity span F1 (iob2)",
             "evaluate": ["--scheme", "iob2"]},
}

REFERENCES = {
    "ewt": "UPOS accuracy BiLSTM 94.6-95.0 (Plank et al., 2016), Stanza 95.4",
    "wnut": "entity F1 41.9 (shared-task winner), 40.8 (second)",
}
SPEED_REFERENCES = "spaCy en_core_web_lg ~10,000 words/s, Stanza ~900, Flair ~300 (CPU)"


# -- data ----------------------------------------------------------------------------------------------
def read_blocks(path: Path) -> list[list[str]]:
    """The sentences of a CoNLL / CoNLL-U file as lists of lines (comments kept); a line holding only
    whitespace separates sentences."""
    blocks, cur = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def words_and_tags(block: list[str], fmt: str) -> list[tuple[str, str]]:
    """(token, gold tag) per word: CoNLL-U FORM and UPOS (not comments, multiword ranges or empty nodes);
    CoNLL the first and the last column."""
    out = []
    for line in block:
        if fmt == "conllu":
            if line.startswith("#"):
                continue
            f = line.split("\t")
            if "-" in f[0] or "." in f[0]:
                continue
            out.append((f[1], f[3]))
        else:
            f = line.split()
            out.append((f[0], f[-1]))
    return out


def write_blocks(path: Path, blocks: list[list[str]]) -> Path:
    path.write_text("".join("\n".join(b) + "\n\n" for b in blocks), encoding="utf-8")
    return path


def prepare_data(name: str, args, work: Path) -> dict:
    spec = DATASETS[name]
    d = work / "data"
    d.mkdir(parents=True, exist_ok=True)
    train_file, dev_file, fmt = args.data / spec["train"], args.data / spec["dev"], spec["format"]
    train, dev = read_blocks(train_file), read_blocks(dev_file)
    note = f"train {train_file}, dev {dev_file} (read in place)"
    if args.limit:
        train = train[:args.limit]
        train_file = write_blocks(d / f"train.limited.{fmt}", train)
        known = {t for b in train for _, t in words_and_tags(b, fmt)}
        kept = [b for b in dev if all(t in known for _, t in words_and_tags(b, fmt))]
        unseen = sorted({t for b in dev for _, t in words_and_tags(b, fmt)} - known)
        note += f"; --limit {args.limit}: the first {len(train)} training sentences ({train_file})"
        if unseen:
            dev_file = write_blocks(d / f"dev.limited.{fmt}", kept)
            note += (f"; dev cut to the {len(kept)} of {len(dev)} sentences without a tag unseen in those "
                     f"(unseen: {', '.join(unseen)}) ({dev_file})")
            dev = kept
    dev_words = [[w for w, _ in words_and_tags(b, fmt)] for b in dev]
    n_words = sum(len(s) for s in dev_words)
    reps = max(1, math.ceil(args.tag_words / n_words))
    text = d / "dev.lines.txt"
    text.write_text("".join(" ".join(s) + "\n" for s in dev_words) * reps, encoding="utf-8")
    train_words = sum(len(words_and_tags(b, fmt)) for b in train)
    tags = sorted({t for b in train for _, t in words_and_tags(b, fmt)})
    print(f"data {name}: {note}")
    print(f"  {len(train)} training sentences ({train_words} words), {len(dev)} dev ({n_words} words), "
          f"{len(tags)} tags; speed: the dev sentences x{reps} = {reps * len(dev)} lines, {reps * n_words} "
          f"words ({text})", flush=True)
    return {"train": train_file, "dev": dev_file, "format": fmt, "text": text,
            "text_lines": reps * len(dev), "text_words": reps * n_words}


# -- rnntool -------------------------------------------------------------------------------------------
TAGGED = re.compile(r"tagged (\d+) sentences, (\d+) words in ([0-9.]+)s(?: \(([0-9.]+) words/s\))?")


def tag_speed(model: Path, data: dict, args, log_dir: Path, tag: str, batch: int | None) -> dict:
    """words/s of `rnntool tag` on the repeated dev text: (the command, as it logs)."""
    out = log_dir / f"{tag}.tagged.txt"
    cmd = ["rnntool", "tag", "-m", str(model), str(data["text"]), "--format", "lines", "-o", str(out),
           "--device", "cpu", *(["--batch-size", str(batch)] if batch else [])]
    done, seconds, stderr = run_logged(cmd, log_dir, tag, args.threads, json_out=False)
    if done is None:
        return {"failed": True}
    lines = out.read_text(encoding="utf-8").splitlines()
    words = sum(len(line.split()) for line in lines)
    if len(lines) != data["text_lines"] or words != data["text_words"]:
        print(f"  warning: {len(lines)} output lines, {words} words for {data['text_lines']} lines, "
              f"{data['text_words']} words in", flush=True)
    m = TAGGED.findall(stderr)
    inner = None
    if m:
        n_words, secs, rate = int(m[-1][1]), float(m[-1][2]), m[-1][3]
        if n_words != data["text_words"]:
            print(f"  warning: its log says {n_words} words, the input has {data['text_words']}", flush=True)
        # its own words/s (the seconds it prints are rounded to 0.1 s)
        inner = float(rate) if rate else (n_words / secs if secs > 0 else None)
    print(f"  {words} words in {seconds:.1f}s: {words / seconds:.0f} words/s (the command); "
          + (f"{inner:.0f} words/s as it logs ({m[-1][2]}s for {m[-1][1]} words, start-up and model loading "
             "excluded)" if inner else "no 'tagged N sentences, W words in Xs' line in its log"), flush=True)
    return {"wall": words / seconds, "inner": inner}


def run_config(name: str, config: str, data: dict, args, work: Path) -> dict:
    label, changes = CONFIGS[config]
    spec = DATASETS[name]
    recipe = override(RECIPES[name], *changes) if changes else list(RECIPES[name])
    log_dir = work / "rnntool"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"\n[{name}] {config}: {label}, --max-time {args.budget[name]}", flush=True)
    model = work / "models" / config
    shutil.rmtree(model, ignore_errors=True)
    cmd = ["rnntool", "train", "tag", str(data["train"]), "--valid", str(data["dev"]), "-o", str(model),
           "--format", data["format"], "--max-time", args.budget[name], "--threads", str(args.threads),
           "--seed", str(args.seed), "--json", "--device", "cpu", *recipe]
    summary, seconds, _ = run_logged(cmd, log_dir, f"{config}-train", args.threads)
    row: dict = {"config": config, "label": label}
    if summary is None:
        return {**row, "failed": True}
    m = summary.get("metrics", {})
    row.update(train_s=seconds, steps=summary.get("steps"), best_step=m.get("best_step"),
               stop=summary.get("stop_reason"))
    print(f"  trained {summary.get('steps')} steps (best at {m.get('best_step')}) in {seconds:.0f}s, stopped by "
          f"{summary.get('stop_reason')}; val accuracy {m.get('val_accuracy')}"
          + (f", span F1 {m.get('val_span_f1')}" if "val_span_f1" in m else ""), flush=True)

    cmd = ["rnntool", "evaluate", "tags", "-m", str(model), str(data["dev"]), "--format", data["format"],
           *spec["evaluate"], "--json", "--device", "cpu"]
    report, _, _ = run_logged(cmd, log_dir, f"{config}-evaluate", args.threads)
    if report:
        key, iv = report[spec["key"]], report.get("interval") or {}
        row.update(key=key, low=iv.get("low"), high=iv.get("high"), accuracy=report["token_accuracy"],
                   precision=report.get("precision"), recall=report.get("recall"))
        extra = (f"; precision {100 * report['precision']:.2f}, recall {100 * report['recall']:.2f}, token accuracy "
                 f"{100 * report['token_accuracy']:.2f}" if spec["key"] == "f1" else "")
        interval = (f" (95% {100 * iv['low']:.1f}-{100 * iv['high']:.1f})" if iv.get("low") is not None else "")
        print(f"  dev {spec['key_name']} {100 * key:.2f}{interval}{extra} "
              f"({report['sentences']} sentences, {report['tokens']} tokens)", flush=True)
    else:
        row["eval_failed"] = True
    row["b1"] = tag_speed(model, data, args, log_dir, f"{config}-tag-b1", 1)
    row["bdef"] = tag_speed(model, data, args, log_dir, f"{config}-tag-default", None)
    return row


# -- report --------------------------------------------------------------------------------------------
def table(name: str, rows: list[dict]) -> str:
    spec = DATASETS[name]
    spans = spec["key"] == "f1"

    def num(v, scale=100.0, digits=2):
        return f"{scale * v:.{digits}f}" if isinstance(v, (int, float)) else "-"

    def speed(s: dict) -> str:
        if s.get("failed"):
            return "failed"
        return f"{s['wall']:.0f} / {s['inner']:.0f}" if s.get("inner") else (f"{s['wall']:.0f} / -" if s else "-")

    head = (f"| configuration | dev {spec['key_name']} (95% interval) | "
            + ("precision | recall | token accuracy | " if spans else "")
            + "train s | steps (best) | words/s batch 1 (command / logged) | words/s batch 32 (command / logged) |")
    out = [f"### {name}: {spec['title']}", "", head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if r.get("failed"):
            out.append(f"| {r['label']} | training failed |" + " |" * (head.count("|") - 3))
            continue
        key = ("evaluate failed" if r.get("eval_failed") else
               f"{num(r.get('key'))} ({num(r.get('low'), digits=1)}-{num(r.get('high'), digits=1)})")
        cells = [r["label"], key]
        if spans:
            cells += [num(r.get("precision")), num(r.get("recall")), num(r.get("accuracy"))]
        cells += [f"{r['train_s']:.0f}", f"{r.get('steps')} ({r.get('best_step')})", speed(r["b1"]),
                  speed(r["bdef"])]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append(f"Published (TEST set, not measured here): {REFERENCES[name]}. CPU speeds for context: "
               f"{SPEED_REFERENCES}.")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="ewt,wnut", help="comma-separated: ewt, wnut (default: both)")
    ap.add_argument("--budget", default="15m", help="--max-time of each training run, e.g. 15m, or per dataset: "
                    "15m,wnut=10m (default 15m)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {', '.join(CONFIGS)} "
                    "(default: all four)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training sentences (smoke runs)")
    ap.add_argument("--tag-words", type=int, default=None, help="words tagged for the speed figures: the dev "
                    "sentences repeated to at least this many (default 20000; 2000 with --limit)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads for rnntool (default 2)")
    ap.add_argument("--seed", type=int, default=1, help="rnntool --seed (default 1)")
    ap.add_argument("--out", type=Path, default=None, help="keep the models, data files and logs here "
                    "(default: a temporary directory, removed at the end)")
    ap.add_argument("--data", type=Path, default=DATA, help=f"the shared data directory (default {DATA})")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in RECIPES]
    if unknown or not names:
        ap.error(f"--datasets: unknown {unknown[0] if unknown else args.datasets!r}; choose from {', '.join(RECIPES)}")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown or not configs:
        ap.error(f"--configs: unknown {unknown[0] if unknown else args.configs!r}; choose from {', '.join(CONFIGS)}")
    args.budget = per_dataset(args.budget, names, RECIPES, "--budget", ap.error)
    if args.limit < 0:
        ap.error("--limit must be 0 (all) or more")
    if args.tag_words is None:
        args.tag_words = 2000 if args.limit else 20000
    missing = [f for n in names for f in (DATASETS[n]["train"], DATASETS[n]["dev"]) if not (args.data / f).is_file()]
    if missing:
        print(f"bench: {args.data / missing[0]} not found (the shared benchmark data)", file=sys.stderr)
        return 1

    for line in machine_info(args.threads):
        print(line)
    print(f"rnntool: train tag --max-time {budgets(args.budget)}, --threads {args.threads}, --seed {args.seed}; "
          f"configurations {', '.join(configs)}")
    print("references (TEST sets, not measured here): " + "; ".join(f"{n}: {REFERENCES[n]}" for n in names)
          + f"; CPU tagging speeds: {SPEED_REFERENCES}")

    root = args.out.resolve() if args.out else Path(tempfile.mkdtemp(prefix="tag-ewt-wnut-"))
    results: dict[str, list[dict]] = {}
    try:
        for name in names:
            work = root / name
            print(f"\n== {name} (work directory {work})", flush=True)
            data = prepare_data(name, args, work)
            results[name] = [run_config(name, c, data, args, work) for c in configs]
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    print()
    try:
        print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    except OSError:
        pass
    print("train s: the whole `train tag` command (start-up, vocabulary, validation and writing included). "
          "Speed: `rnntool tag --format lines` on the repeated dev text; 'command' is the whole command timed "
          "from outside, 'logged' its own 'tagged N sentences, W words in Xs' (start-up and model loading "
          "excluded). See the docstring of bench/tag_ewt_wnut.py.\n")
    for name in names:
        print(table(name, results[name]) + "\n")
    failed = any(r.get("failed") or r.get("eval_failed") or r.get("b1", {}).get("failed")
                 or r.get("bdef", {}).get("failed") for rows in results.values() for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

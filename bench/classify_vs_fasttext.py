"""SST-2 and TREC: `rnntool train classify` (a biLSTM with max pooling, and an LM-initialized LSTM) side
by side with fastText (unigrams, bigrams) in one run: dev accuracy, macro-F1, training seconds and
classification sentences/s.

    .venv/bin/pip install fasttext-wheel                                       # once: fastText from PyPI
    .venv/bin/python bench/classify_vs_fasttext.py                             # both sets, 10m budgets
    .venv/bin/python bench/classify_vs_fasttext.py --datasets trec --budget 5m --lm-budget 5m
    .venv/bin/python bench/classify_vs_fasttext.py --budget 10m,trec=5m --skip-init-from
    .venv/bin/python bench/classify_vs_fasttext.py --datasets trec --limit 600 --budget 20s --lm-budget 20s  # smoke

The data is read from ../shared/data (never copied into the repository):

- SST-2: sst2/train.tsv (67,349 phrases) and sst2/dev.tsv (872 sentences) as given (read in place; with
  --limit the first N training rows go to a temporary file).
- TREC: trec/train.tsv (5,452 questions, 6 coarse classes) has no dev split: a random 10% of it
  (random.Random(1).shuffle of the line numbers, the first 545) is the dev set, the rest (in file order)
  trains. Both are written to a temporary directory.

fastText (the `fasttext` module from PyPI, installed for this benchmark only) trains `train_supervised`
on the same examples written as `__label__X text` lines, text as given (no lower-casing), with the
settings in FASTTEXT below: 1 thread and seed 1, so a rerun gives the same model.

rnntool runs the printed commands (the installed CLI, `python -m rnntool`, so what is measured is what
users run) with a fresh registry each:

- `train classify` with the dataset's recipe (RECIPES below) under --budget, then `evaluate
  classification -m MODEL DEV` for accuracy (with its bootstrap 95% interval) and macro-F1;
- unless --skip-init-from: `train lm` on the training texts only (--mode sentence, a 1-layer LSTM; its
  validation is the last 5% of those texts) under --lm-budget, then `train classify --init-from LM` (the
  LM's tokenizer, embeddings and LSTM; a unidirectional encoder), evaluated the same way.

fastText's predictions are scored by the same code (`rnntool evaluate classification PRED --ref DEV`).

Classification speed: the dev texts repeated to at least --classify-lines lines (default 20,000; 2,000
with --limit). rnntool: `rnntool classify -m MODEL FILE -o OUT`, timed from outside (the whole command:
Python start-up and model loading included) and as it logs itself ("classified N lines in Xs": reading,
tokenizing, classifying, writing). fastText: in-process, reading the file, `predict` on all lines,
writing the labels (the model already in memory). Compare the second rnntool figure with fastText's.

Threads: rnntool training gets --threads (default 2); `classify` and `evaluate` have no --threads option
and get OMP_NUM_THREADS=--threads. fastText trains and predicts on one thread. On a machine with other
processes on the cores, multi-threaded torch slows down by large and random factors (the load average
is printed at the start and the end).

Published references (on the TEST sets, which this benchmark does not use; dev figures are not
comparable one-to-one): SST-2 LSTM 84.9, BiLSTM 87.5 (Tai et al., 2015), CNN 88.1 (Kim, 2014); TREC
CNN 93.6 (Kim, 2014), C-LSTM 94.6 (Zhou et al., 2015).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from machine import machine_info  # bench/ is on sys.path when run as a script
from recipes import budgets, override, per_dataset, run_logged

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
TREC_DEV_FRACTION, TREC_DEV_SEED = 0.1, 1

# Per dataset: "classify" (a bidirectional LSTM with max pooling, from scratch), "lm" (the language model
# for --init-from: trained on the training texts only) and "init_from" (the classifier on top of it: the LM
# fixes the tokenizer, cell and sizes, so no architecture options here).
RECIPES: dict[str, dict[str, list[str]]] = {
    "sst2": {
        "classify": ["--vocab-size", "8000", "--cell", "lstm", "--layers", "1", "--bidirectional",
                     "--pooling", "max", "--embed-dim", "256", "--hidden-dim", "512", "--dropout", "0.4",
                     "--batch-size", "64", "--lr", "2e-3", "--schedule", "cosine", "--eval-every", "500"],
        "lm": ["--vocab-size", "8000", "--mode", "sentence", "--no-tie-embeddings", "--cell", "lstm",
               "--layers", "1",
               "--embed-dim", "256", "--hidden-dim", "512", "--dropout", "0.3", "--batch-size", "64",
               "--lr", "2e-3", "--schedule", "cosine", "--eval-every", "1000"],
        "init_from": ["--pooling", "max", "--dropout", "0.4", "--batch-size", "64", "--lr", "2e-3",
                      "--schedule", "cosine", "--eval-every", "500", "--pretrained-lr-scale", "0.3",
                      "--unfreeze-every", "300"],
    },
    "trec": {  # 4,907 training questions: about 150 steps per epoch at batch 32, validated after each epoch
        "classify": ["--vocab-size", "4000", "--cell", "lstm", "--layers", "1", "--bidirectional",
                     "--pooling", "max", "--embed-dim", "256", "--hidden-dim", "512", "--dropout", "0.5",
                     "--batch-size", "32", "--lr", "2e-3", "--schedule", "cosine"],
        "lm": ["--vocab-size", "4000", "--mode", "sentence", "--no-tie-embeddings", "--cell", "lstm",
               "--layers", "1",
               "--embed-dim", "256", "--hidden-dim", "512", "--dropout", "0.4", "--batch-size", "32",
               "--lr", "2e-3", "--schedule", "cosine", "--eval-every", "300"],
        "init_from": ["--pooling", "max", "--dropout", "0.5", "--batch-size", "32", "--lr", "2e-3",
                      "--schedule", "cosine", "--pretrained-lr-scale", "0.3", "--unfreeze-every", "150"],
    },
}

# fastText train_supervised settings (fastText's tutorial values: 25 epochs, lr 0.5 on unigrams and 1.0
# with bigrams); thread=1 and a fixed seed make it deterministic.
FASTTEXT: dict[str, dict] = {
    "fastText unigrams": dict(wordNgrams=1, epoch=25, lr=0.5, dim=100, minCount=1, loss="softmax",
                              thread=1, seed=1, verbose=0),
    "fastText bigrams": dict(wordNgrams=2, epoch=25, lr=1.0, dim=100, minCount=1, loss="softmax",
                             bucket=2_000_000, thread=1, seed=1, verbose=0),
}

REFERENCES = {
    "sst2": "LSTM 84.9, BiLSTM 87.5 (Tai et al., 2015), CNN 88.1 (Kim, 2014)",
    "trec": "CNN 93.6 (Kim, 2014), C-LSTM 94.6 (Zhou et al., 2015)",
}
INSTALL_HINT = ("bench: fastText is not installed; install it into the venv with `.venv/bin/pip install "
                "fasttext-wheel` (or `.venv/bin/pip install fasttext`, which builds from source with a C++ compiler)")


# -- data ----------------------------------------------------------------------------------------------
def read_rows(path: Path, header: bool) -> list[tuple[str, str]]:
    """(label, text) per line of a 'label<TAB>text' file."""
    lines = path.read_text(encoding="utf-8").splitlines()[1 if header else 0:]
    rows = []
    for line in lines:
        if line.strip():
            label, text = line.split("\t", 1)
            rows.append((label.strip(), text.strip()))
    return rows


def write_rows(path: Path, rows: list[tuple[str, str]], header: str | None) -> Path:
    path.write_text((header + "\n" if header else "") + "".join(f"{lab}\t{txt}\n" for lab, txt in rows),
                    encoding="utf-8")
    return path


def prepare_data(name: str, args, work: Path) -> dict:
    """The dataset's train/dev files for rnntool (with their --format), the same examples as fastText
    files, the training texts (for the LM) and the repeated dev texts (for the speed figures)."""
    d = work / "data"
    d.mkdir(parents=True, exist_ok=True)
    if name == "sst2":
        train_file, dev_file = args.data / "sst2" / "train.tsv", args.data / "sst2" / "dev.tsv"
        train, dev = read_rows(train_file, header=True), read_rows(dev_file, header=True)
        fmt, header = "tsv", "label\tsentence"
        note = f"train {train_file} and dev {dev_file} (read in place)"
    else:
        source = args.data / "trec" / "train.tsv"
        rows = read_rows(source, header=False)
        order = list(range(len(rows)))
        random.Random(TREC_DEV_SEED).shuffle(order)
        held = set(order[:round(len(rows) * TREC_DEV_FRACTION)])
        train = [r for i, r in enumerate(rows) if i not in held]
        dev = [r for i, r in enumerate(rows) if i in held]
        fmt, header = "tab", None
        train_file, dev_file = write_rows(d / "train.tsv", train, None), write_rows(d / "dev.tsv", dev, None)
        note = (f"{source}: dev = a random {TREC_DEV_FRACTION:.0%} (random.Random({TREC_DEV_SEED}).shuffle of "
                f"the line numbers, the first {len(dev)}), train = the other {len(train)} in file order; "
                f"written to {d}")
    if args.limit:
        train = train[:args.limit]
        train_file = write_rows(d / "train.limited.tsv", train, header)
        note += f"; --limit {args.limit}: the first {len(train)} training examples ({train_file})"
    ft_train, ft_dev = d / "train.fasttext.txt", d / "dev.fasttext.txt"
    for path, rows in ((ft_train, train), (ft_dev, dev)):
        path.write_text("".join(f"__label__{lab} {txt}\n" for lab, txt in rows), encoding="utf-8")
    lm_texts = d / "train.texts.txt"
    lm_texts.write_text("".join(txt + "\n" for _, txt in train), encoding="utf-8")
    reps = math.ceil(args.classify_lines / len(dev))
    repeated = d / "dev.repeated.txt"
    repeated.write_text("".join(txt + "\n" for _, txt in dev) * reps, encoding="utf-8")
    labels = sorted({lab for lab, _ in train})
    print(f"data {name}: {note}")
    print(f"  {len(train)} training examples, {len(dev)} dev, {len(labels)} classes ({', '.join(labels)}); "
          f"speed: the dev texts x{reps} = {reps * len(dev)} lines ({repeated})", flush=True)
    return {"train": train_file, "dev": dev_file, "format": fmt, "train_rows": train, "dev_rows": dev,
            "ft_train": ft_train, "ft_dev": ft_dev, "lm_texts": lm_texts, "repeated": repeated,
            "repeated_lines": reps * len(dev)}


# -- rnntool -------------------------------------------------------------------------------------------
def evaluate(model_or_preds: Path, data: dict, args, log_dir: Path, tag: str, ref: bool = False) -> dict | None:
    """`rnntool evaluate classification` of a model on the dev set, or (ref=True) of predictions."""
    cmd = ["rnntool", "evaluate", "classification", *(
        [str(model_or_preds), "--ref", str(data["dev"])] if ref else ["-m", str(model_or_preds), str(data["dev"])]),
        "--format", data["format"], "--json", "--device", "cpu"]
    report, _, _ = run_logged(cmd, log_dir, tag, args.threads)
    return report


CLASSIFIED = re.compile(r"classified (\d+) lines in ([0-9.]+)s")


def classify_speed(model: Path, data: dict, args, log_dir: Path, tag: str) -> dict:
    out = log_dir / f"{tag}.predictions.txt"
    cmd = ["rnntool", "classify", "-m", str(model), str(data["repeated"]), "-o", str(out), "--device", "cpu"]
    done, seconds, stderr = run_logged(cmd, log_dir, tag, args.threads, json_out=False)
    if done is None:
        return {}
    n = sum(1 for _ in out.open(encoding="utf-8"))
    if n != data["repeated_lines"]:
        print(f"  warning: {n} output lines for {data['repeated_lines']} input lines", flush=True)
    m = CLASSIFIED.findall(stderr)
    inner = data["repeated_lines"] / float(m[-1][1]) if m and float(m[-1][1]) > 0 else None
    print(f"  {n} lines in {seconds:.1f}s: {n / seconds:.0f} sentences/s (the command); "
          + (f"{inner:.0f} sentences/s as it logs ({m[-1][1]}s: {m[-1][0]} lines, start-up and model "
             "loading excluded)" if inner else "no 'classified N lines in Xs' line in its log"), flush=True)
    return {"wall_sps": n / seconds, "inner_sps": inner}


def rnntool_row(system: str, model: Path, data: dict, args, log_dir: Path, tag: str, train_s: str,
                summary: dict) -> dict:
    m = summary.get("metrics", {})
    print(f"  trained {summary.get('steps')} steps (best at {m.get('best_step')}), stopped by "
          f"{summary.get('stop_reason')}; val accuracy {m.get('val_accuracy')}, macro-F1 {m.get('val_macro_f1')}",
          flush=True)
    report = evaluate(model, data, args, log_dir, f"{tag}-evaluate")
    row = {"system": system, "train_s": train_s, **scores(report)}
    if report:
        print(f"  dev accuracy {100 * report['accuracy']:.2f} (95% {100 * report['interval']['low']:.1f}-"
              f"{100 * report['interval']['high']:.1f}), macro-F1 {100 * report['macro_f1']:.2f}", flush=True)
    row.update(classify_speed(model, data, args, log_dir, f"{tag}-classify"))
    return row


def scores(report: dict | None) -> dict:
    if not report:
        return {}
    return {"accuracy": report["accuracy"], "low": report["interval"]["low"], "high": report["interval"]["high"],
            "macro_f1": report["macro_f1"]}


def run_rnntool(name: str, data: dict, args, work: Path) -> list[dict]:
    recipe, rows = RECIPES[name], []
    if args.vocab_size:
        recipe = {k: override(v, "--vocab-size", str(args.vocab_size)) if k != "init_from" else v
                  for k, v in recipe.items()}
    log_dir = work / "rnntool"
    log_dir.mkdir(parents=True, exist_ok=True)
    common = ["--format", data["format"], "--valid", str(data["dev"]), "--json", "--seed", str(args.seed),
              "--threads", str(args.threads), "--device", "cpu"]

    print(f"\n[{name}] rnntool biLSTM (max pooling), --max-time {args.budget[name]}", flush=True)
    model = work / "models" / "bilstm"
    shutil.rmtree(model, ignore_errors=True)
    cmd = ["rnntool", "train", "classify", str(data["train"]), "-o", str(model), "--max-time", args.budget[name],
           *common, *recipe["classify"]]
    summary, seconds, _ = run_logged(cmd, log_dir, "bilstm-train", args.threads)
    if summary is None:
        rows.append({"system": "rnntool biLSTM", "failed": True})
    else:
        rows.append(rnntool_row("rnntool biLSTM", model, data, args, log_dir, "bilstm", f"{seconds:.0f}", summary))

    if args.skip_init_from:
        return rows
    print(f"\n[{name}] rnntool LSTM LM (--max-time {args.lm_budget[name]}) -> classifier --init-from "
          f"(--max-time {args.budget[name]})", flush=True)
    lm = work / "models" / "lm"
    shutil.rmtree(lm, ignore_errors=True)
    cmd = ["rnntool", "train", "lm", str(data["lm_texts"]), "-o", str(lm), "--max-time", args.lm_budget[name],
           "--json", "--seed", str(args.seed), "--threads", str(args.threads), "--device", "cpu", *recipe["lm"]]
    lm_summary, lm_seconds, _ = run_logged(cmd, log_dir, "lm-train", args.threads)
    if lm_summary is None:
        rows.append({"system": "rnntool LM-init LSTM", "failed": True})
        return rows
    m = lm_summary.get("metrics", {})
    print(f"  LM: {lm_summary.get('steps')} steps, stopped by {lm_summary.get('stop_reason')}; val ppl "
          f"{m.get('val_ppl', float('nan')):.1f}, {m.get('val_bpc', float('nan')):.3f} bits/char", flush=True)
    model = work / "models" / "lm-init"
    shutil.rmtree(model, ignore_errors=True)
    cmd = ["rnntool", "train", "classify", str(data["train"]), "-o", str(model), "--init-from", str(lm),
           "-t", str(lm), "--unidirectional", "--max-time", args.budget[name], *common, *recipe["init_from"]]
    summary, seconds, _ = run_logged(cmd, log_dir, "lm-init-train", args.threads)
    if summary is None:
        rows.append({"system": "rnntool LM-init LSTM", "failed": True})
    else:
        rows.append(rnntool_row("rnntool LM-init LSTM", model, data, args, log_dir, "lm-init",
                                f"{lm_seconds:.0f} + {seconds:.0f}", summary))
    return rows


# -- fastText ------------------------------------------------------------------------------------------
def run_fasttext(name: str, data: dict, args, work: Path, fasttext) -> list[dict]:
    log_dir = work / "fasttext"
    log_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    dev_texts = [t for _, t in data["dev_rows"]]
    for system, settings in FASTTEXT.items():
        tag = system.split()[-1]
        print(f"\n[{name}] {system}: fasttext.train_supervised(input={str(data['ft_train'])!r}, "
              + ", ".join(f"{k}={v!r}" for k, v in settings.items()) + ")", flush=True)
        start = time.perf_counter()
        model = fasttext.train_supervised(input=str(data["ft_train"]), **settings)
        train_s = time.perf_counter() - start
        labels, _ = model.predict(dev_texts, k=1)
        preds = log_dir / f"{tag}.dev.predictions.txt"
        preds.write_text("".join(lab[0] + "\n" for lab in labels), encoding="utf-8")
        report = evaluate(preds, data, args, log_dir, f"{tag}-evaluate", ref=True)
        # speed: read the file, predict every line, write the labels (the model is in memory)
        out = log_dir / f"{tag}.predictions.txt"
        start = time.perf_counter()
        texts = data["repeated"].read_text(encoding="utf-8").splitlines()
        labels, _ = model.predict(texts, k=1)
        out.write_text("".join(lab[0] + "\n" for lab in labels), encoding="utf-8")
        sps = len(texts) / (time.perf_counter() - start)
        row = {"system": system, "train_s": f"{train_s:.1f}", **scores(report), "inner_sps": sps}
        if report:
            print(f"  trained in {train_s:.1f}s; dev accuracy {100 * report['accuracy']:.2f} (95% "
                  f"{100 * report['interval']['low']:.1f}-{100 * report['interval']['high']:.1f}), macro-F1 "
                  f"{100 * report['macro_f1']:.2f}; {sps:.0f} sentences/s ({len(texts)} lines, in-process)",
                  flush=True)
        rows.append(row)
    return rows


# -- report --------------------------------------------------------------------------------------------
def table(name: str, rows: list[dict]) -> str:
    def pct(r, k):
        return f"{100 * r[k]:.2f}" if k in r else "-"

    def sps(r, k):
        return f"{r[k]:.0f}" if r.get(k) else "-"

    out = [f"### {name}", "",
           "| system | dev accuracy (95% interval) | macro-F1 | train seconds | classify sentences/s "
           "(command) | classify sentences/s (start-up excluded) |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("failed"):
            out.append(f"| {r['system']} | failed | | | | |")
            continue
        acc = f"{pct(r, 'accuracy')} ({100 * r['low']:.1f}-{100 * r['high']:.1f})" if "low" in r else "-"
        out.append(f"| {r['system']} | {acc} | {pct(r, 'macro_f1')} | {r.get('train_s', '-')} | "
                   f"{sps(r, 'wall_sps')} | {sps(r, 'inner_sps')} |")
    out.append("")
    out.append(f"Published (TEST set, not measured here): {REFERENCES[name]}.")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="sst2,trec", help="comma-separated: sst2, trec (default: both)")
    ap.add_argument("--budget", default="10m", help="rnntool classifier --max-time, e.g. 10m, or per dataset: "
                    "10m,trec=5m (default 10m)")
    ap.add_argument("--lm-budget", default="10m", help="--max-time of the language model for --init-from, the "
                    "same forms (default 10m)")
    ap.add_argument("--skip-init-from", action="store_true", help="no language model, no --init-from classifier")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training examples (smoke runs)")
    ap.add_argument("--vocab-size", type=int, default=None, help="override the recipes' --vocab-size (a small "
                    "--limit may need it: a tokenizer cannot have more pieces than the text allows)")
    ap.add_argument("--classify-lines", type=int, default=None, help="lines classified for the speed figures: "
                    "the dev texts repeated to at least this many (default 20000; 2000 with --limit)")
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
    args.budget = per_dataset(args.budget, names, RECIPES, "--budget", ap.error)
    args.lm_budget = per_dataset(args.lm_budget, names, RECIPES, "--lm-budget", ap.error)
    if args.limit < 0:
        ap.error("--limit must be 0 (all) or more")
    if args.classify_lines is None:
        args.classify_lines = 2000 if args.limit else 20000
    files = {"sst2": ["sst2/train.tsv", "sst2/dev.tsv"], "trec": ["trec/train.tsv"]}
    missing = [f for n in names for f in files[n] if not (args.data / f).is_file()]
    if missing:
        print(f"bench: {args.data / missing[0]} not found (the shared benchmark data)", file=sys.stderr)
        return 1
    try:
        import fasttext
        import fasttext.FastText
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    fasttext.FastText.eprint = lambda *a, **k: None  # its load/predict warnings

    for line in machine_info(args.threads):
        print(line)
    version = getattr(fasttext, "__version__", None)
    if version is None:
        from importlib.metadata import PackageNotFoundError, version as dist_version
        for dist in ("fasttext-wheel", "fasttext"):
            try:
                version = f"{dist} {dist_version(dist)}"
                break
            except PackageNotFoundError:
                pass
    print(f"fastText: {version or 'unknown version'} (1 thread)")
    print(f"rnntool: classifier --max-time {budgets(args.budget)}, LM --max-time "
          f"{'(skipped)' if args.skip_init_from else budgets(args.lm_budget)}, --threads {args.threads}, "
          f"--seed {args.seed}")
    print("references (TEST sets, not measured here): " + "; ".join(f"{n}: {REFERENCES[n]}" for n in names))

    root = args.out.resolve() if args.out else Path(tempfile.mkdtemp(prefix="classify-vs-fasttext-"))
    results: dict[str, list[dict]] = {}
    try:
        for name in names:
            work = root / name
            print(f"\n== {name} (work directory {work})", flush=True)
            data = prepare_data(name, args, work)
            results[name] = run_fasttext(name, data, args, work, fasttext) + run_rnntool(name, data, args, work)
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    print()
    try:
        print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    except OSError:
        pass
    print("train seconds: fastText in-process; rnntool the whole command (start-up, tokenizer, validation and "
          "writing included; LM-init: LM + classifier). Speed: see the docstring of bench/classify_vs_fasttext.py.\n")
    for name in names:
        print(table(name, results[name]) + "\n")
    failed = any(r.get("failed") for rows in results.values() for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

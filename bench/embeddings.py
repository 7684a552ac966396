"""Word and sentence vectors (issue 13), side by side in one run:

1. features: logistic regression (scikit-learn, bench only) on `rnntool embed` vectors of SST-2 and TREC
   from a language model, a translation model's encoder and a classifier, against averaged word2vec
   vectors, plus the classifier's own dev accuracy for reference;
2. init: does `--init-embeddings` (word2vec trained on the shared English training text) help the SST-2
   classifier and the EWT tagger (words only) within the same budget;
3. speed: `rnntool embed` lines/s, batched (64) against one line at a time.

    .venv/bin/python bench/embeddings.py                                  # everything, 3m budgets: ~31 minutes
    .venv/bin/python bench/embeddings.py --stages features --budget 2m
    .venv/bin/python bench/embeddings.py --limit 2000 --budget 20s        # a smoke run, a few minutes

The data is read in place from ../shared/data. SST-2 and TREC as bench/classify_vs_fasttext.py splits them
(TREC: a fixed random 10% of train.tsv is the dev set); the encoders:

- lm: `train lm` on the dataset's training texts (classify_vs_fasttext.py's LM recipe) for --budget;
- translation: `train translate` on Multi30k en->de (multi30k.py's "fast" recipe) for --budget, one model
  for both datasets (its English encoder reads them);
- classifier: `train classify` on the dataset (classify_vs_fasttext.py's recipe) for --budget;
- word2vec: `train word2vec` (skip-gram, 100 dimensions, 5 epochs, --min-count 3, lowercased) on the
  English training text of the shared sets: SST-2 train, the TREC training split, Multi30k train.en,
  EWT train (its words), Tiny Shakespeare; exported with `models vectors` for stage 2.

Each is embedded with `rnntool embed -m MODEL --pool mean --npy` (word2vec: the average of the line's word
vectors); a LogisticRegression (C=1, max_iter 2000, on standardized features) is fitted on the training
vectors and scored on the dev vectors. Stage 2 runs each configuration with the same --budget and seed,
with `--embed-dim 100` (the vectors' dimension) without the vectors. Stage 3: the SST-2 dev texts repeated
to --speed-lines lines, `rnntool embed` at --batch-size 64 and 1, the lines/s the command logs.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from classify_vs_fasttext import RECIPES as CLASSIFY_RECIPES
from classify_vs_fasttext import prepare_data as classify_data
from machine import machine_info  # bench/ is on sys.path when run as a script
from multi30k import RECIPES as TRANSLATE_RECIPES
from recipes import override, run_logged
from tag_ewt_wnut import RECIPES as TAG_RECIPES
from tag_ewt_wnut import prepare_data as tag_data

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
OUT = REPO / "bench" / "out" / "embeddings"
W2V = ["--algorithm", "skipgram", "--embed-dim", "100", "--epochs", "5", "--min-count", "3", "--lowercase",
       "--seed", "1"]


def english_corpus(args, work: Path, datasets: dict) -> Path:
    """The shared English training text, one line each, for word2vec."""
    parts = [datasets[n]["lm_texts"] for n in ("sst2", "trec") if n in datasets]
    parts += [args.data / "multi30k" / "train.en", args.data / "tinyshakespeare" / "input.txt"]
    out = work / "data" / "english.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for p in parts:
            lines = Path(p).read_text(encoding="utf-8").splitlines()
            f.writelines(line + "\n" for line in (lines[:args.limit * 5] if args.limit else lines))
        ewt = args.data / "ud-ewt" / "en_ewt-ud-train.conllu"
        words: list[str] = []
        for line in ewt.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                if words:
                    f.write(" ".join(words) + "\n")
                words = []
            elif not line.startswith("#"):
                cols = line.split("\t")
                if cols[0].isdigit():
                    words.append(cols[1])
    print(f"word2vec corpus: {', '.join(str(p) for p in parts)} and {ewt} (words) -> {out}", flush=True)
    return out


def drop_option(args: list[str], option: str) -> list[str]:
    """``args`` without ``option`` and its value."""
    i = args.index(option)
    return args[:i] + args[i + 2:]


def budget_options(budget: str) -> list[str]:
    return ["--max-time", budget]


def train(cmd: list[str], work: Path, tag: str, args) -> tuple[Path | None, float]:
    out = work / tag
    shutil.rmtree(out, ignore_errors=True)
    summary, seconds, _ = run_logged([*cmd, "-o", str(out), "--json"], work / "logs", tag, args.threads)
    if summary is None:
        return None, seconds
    print(f"  {tag}: {seconds:.0f}s, {json.dumps(summary.get('metrics', {}))[:200]}", flush=True)
    return out, seconds


def embed(model: Path, texts: Path, work: Path, tag: str, args, pool: str = "mean", batch: int | None = None):
    """The (N, H) matrix `rnntool embed` writes, and the lines/s it logs."""
    import numpy as np

    npy = work / "vectors" / f"{tag}.npy"
    npy.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["rnntool", "embed", "-m", str(model), str(texts), "--pool", pool, "--npy", str(npy)]
    if batch is not None:
        cmd += ["--batch-size", str(batch)]
    summary, seconds, stderr = run_logged(cmd, work / "logs", tag, args.threads, json_out=False)
    if summary is None:
        return None, None
    speed = re.search(r"embedded (\d+) lines in [\d.]+s \(([\d.]+) lines/s\)", stderr)
    return np.load(npy, allow_pickle=False), float(speed.group(2)) if speed else None


def logistic_regression(train_x, train_y, dev_x, dev_y) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    clf.fit(train_x, train_y)
    return float((clf.predict(dev_x) == dev_y).mean())


def texts_file(rows, path: Path) -> Path:
    path.write_text("".join(text + "\n" for _, text in rows), encoding="utf-8")
    return path


def features_stage(args, work: Path, datasets: dict, w2v: Path | None) -> list[dict]:
    import numpy as np

    rows = []
    mt, mt_s = train(["rnntool", "train", "translate", "--src", str(args.data / "multi30k" / "train.en"),
                      "--tgt", str(args.data / "multi30k" / "train.de"), "--valid-src",
                      str(args.data / "multi30k" / "val.en"), "--valid-tgt", str(args.data / "multi30k" / "val.de"),
                      *TRANSLATE_RECIPES["fast"], "--threads", str(args.threads), "--seed", "1",
                      *budget_options(args.budget)], work, "translate", args)
    for name, data in datasets.items():
        d = work / name
        d.mkdir(parents=True, exist_ok=True)
        train_texts = texts_file(data["train_rows"], d / "train.texts")
        dev_texts = texts_file(data["dev_rows"], d / "dev.texts")
        train_y = np.array([label for label, _ in data["train_rows"]])
        dev_y = np.array([label for label, _ in data["dev_rows"]])
        recipe = CLASSIFY_RECIPES[name]
        lm, _ = train(["rnntool", "train", "lm", str(data["lm_texts"]), *recipe["lm"], "--threads", str(args.threads),
                       "--seed", "1", *budget_options(args.budget)], d, "lm", args)
        clf, _ = train(["rnntool", "train", "classify", str(data["train"]), "--format", data["format"],
                        "--valid", str(data["dev"]), *recipe["classify"], "--threads", str(args.threads),
                        "--seed", "1", *budget_options(args.budget)], d, "classifier", args)
        clf_acc = None
        if clf is not None:
            manifest = json.loads((clf / "manifest.json").read_text())
            clf_acc = manifest["metrics"].get("val_accuracy")
        for system, model in (("language model (mean of states)", lm), ("translation encoder (mean)", mt),
                              ("classifier encoder (mean)", clf), ("word2vec (averaged vectors)", w2v)):
            if model is None:
                rows.append({"dataset": name, "system": system, "accuracy": None})
                continue
            tag = re.sub(r"\W+", "-", system.split(" (")[0])
            train_x, _ = embed(model, train_texts, d, f"{tag}-train", args)
            dev_x, _ = embed(model, dev_texts, d, f"{tag}-dev", args)
            if train_x is None or dev_x is None:
                rows.append({"dataset": name, "system": system, "accuracy": None})
                continue
            started = time.perf_counter()
            acc = logistic_regression(train_x, train_y, dev_x, dev_y)
            rows.append({"dataset": name, "system": system, "dim": int(train_x.shape[1]), "accuracy": acc,
                         "fit_s": round(time.perf_counter() - started, 1)})
            print(f"  {name} {system}: {train_x.shape[1]} dimensions, dev accuracy {100 * acc:.2f}", flush=True)
        rows.append({"dataset": name, "system": "the classifier itself (its own output layer)",
                     "accuracy": clf_acc})
    return rows


def init_stage(args, work: Path, datasets: dict, vec: Path | None) -> list[dict]:
    rows = []
    if vec is None:
        return rows
    if "sst2" in datasets:
        data = datasets["sst2"]
        base = override(CLASSIFY_RECIPES["sst2"]["classify"], "--embed-dim", "100")
        without_dim = drop_option(base, "--embed-dim")  # the vectors set it
        for label, extra, opts in (("random init (--embed-dim 100)", [], base),
                                   ("--init-embeddings word2vec", ["--init-embeddings", str(vec)], without_dim)):
            out, seconds = train(["rnntool", "train", "classify", str(data["train"]), "--format", data["format"],
                                  "--valid", str(data["dev"]), *opts, *extra, "--threads", str(args.threads),
                                  "--seed", "1", *budget_options(args.init_budget)], work / "init",
                                 f"sst2-{'init' if extra else 'random'}", args)
            acc = json.loads((out / "manifest.json").read_text())["metrics"].get("val_accuracy") if out else None
            rows.append({"task": "SST-2 classifier, dev accuracy", "system": label, "score": acc, "seconds": seconds})
    ewt = tag_data("ewt", SimpleNamespace(data=args.data, limit=args.limit, tag_words=1000), work / "init" / "ewt")
    base = override(TAG_RECIPES["ewt"], "--char-hidden", "0")
    without_dim = drop_option(base, "--embed-dim")
    for label, extra, opts in (("words only, random init (--embed-dim 100)", [], base),
                               ("words only, --init-embeddings word2vec", ["--init-embeddings", str(vec)], without_dim)):
        out, seconds = train(["rnntool", "train", "tag", str(ewt["train"]), "--valid", str(ewt["dev"]), *opts, *extra,
                              "--threads", str(args.threads), "--seed", "1", *budget_options(args.init_budget)],
                             work / "init", f"ewt-{'init' if extra else 'random'}", args)
        acc = json.loads((out / "manifest.json").read_text())["metrics"].get("val_accuracy") if out else None
        rows.append({"task": "EWT UPOS tagger, dev token accuracy", "system": label, "score": acc, "seconds": seconds})
    for r in rows:
        print(f"  {r['task']}: {r['system']}: {r['score']}", flush=True)
    return rows


def speed_stage(args, work: Path, datasets: dict, models: dict[str, Path]) -> list[dict]:
    rows = []
    dev = datasets["sst2"]["dev_rows"] if "sst2" in datasets else next(iter(datasets.values()))["dev_rows"]
    reps = math.ceil(args.speed_lines / len(dev))
    text = work / "speed.txt"
    text.write_text("".join(t + "\n" for _, t in dev) * reps, encoding="utf-8")
    for name, model in models.items():
        for batch in (64, 1):
            _, speed = embed(model, text, work, f"speed-{name}-{batch}", args, batch=batch)
            rows.append({"model": name, "batch": batch, "lines": reps * len(dev), "lines_per_s": speed})
            print(f"  embed {name} --batch-size {batch}: {speed} lines/s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", default="features,init,speed")
    ap.add_argument("--datasets", default="sst2,trec")
    ap.add_argument("--budget", default="3m", help="training budget of each encoder (default 3m)")
    ap.add_argument("--init-budget", default=None, help="training budget of stage 2's runs (default: --budget)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="first N training examples only (smoke runs)")
    ap.add_argument("--speed-lines", type=int, default=5000)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.init_budget = args.init_budget or args.budget
    stages = set(args.stages.split(","))
    for line in machine_info(args.threads):
        print(line)
    print(f"$ python bench/embeddings.py {shlex.join(argv if argv is not None else sys.argv[1:])}\n", flush=True)
    work = args.out
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    names = [n for n in args.datasets.split(",") if n]
    cargs = SimpleNamespace(data=args.data, limit=args.limit, classify_lines=100)
    datasets = {n: classify_data(n, cargs, work / n) for n in names}
    corpus = english_corpus(args, work, datasets)
    w2v, _ = train(["rnntool", "train", "word2vec", str(corpus), *W2V, "--threads", str(args.threads)], work,
                   "word2vec", args)
    vec = None
    if w2v is not None:
        vec = work / "word2vec.vec"
        run_logged(["rnntool", "models", "vectors", str(w2v), "-o", str(vec)], work / "logs", "vectors", args.threads,
                   json_out=False)
    results: dict = {}
    if "features" in stages:
        results["features"] = features_stage(args, work, datasets, w2v)
    if "init" in stages:
        results["init"] = init_stage(args, work, datasets, vec)
    if "speed" in stages:
        models = {"lm (sst2)": work / "sst2" / "lm", "classifier (sst2)": work / "sst2" / "classifier",
                  "word2vec": w2v}
        results["speed"] = speed_stage(args, work, datasets, {k: v for k, v in models.items() if v and v.exists()})
    print("\n## results\n")
    for row in results.get("features", []):
        acc = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.2f}"
        print(f"| {row['dataset']} | {row['system']} | {row.get('dim', '-')} | {acc} |")
    for row in results.get("init", []):
        score = "-" if row["score"] is None else f"{100 * row['score']:.2f}"
        print(f"| {row['task']} | {row['system']} | {score} |")
    for row in results.get("speed", []):
        print(f"| embed {row['model']} | batch {row['batch']} | {row['lines']} lines | {row['lines_per_s']} lines/s |")
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

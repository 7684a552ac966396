"""`rnntool evaluate bleu`: sacreBLEU's BLEU / chrF / TER, with signatures, and the paired bootstrap test."""


from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from rnntool.cli.app import evaluate_app
from rnntool.cli.console import console
from rnntool.cli.options import InputArg, JsonOpt, OnBadUtf8Opt, QuietOpt
from rnntool.errors import UsageError
from rnntool.kinds.translation.bleu import TOKENIZERS


@evaluate_app.command("bleu")
def evaluate_bleu(
    hypotheses: InputArg = None,
    ref: Annotated[
        list[Path],
        typer.Option("--ref", "-r", metavar="FILE", show_default=False,
                     help="Reference translations, one per line; repeat for several references (--ref a.de "
                          "--ref b.de); '-' reads stdin when the translations come from a file."),
    ] = ...,  # type: ignore[assignment]
    metrics: Annotated[
        str, typer.Option("--metrics", help="Comma-separated metrics: bleu, chrf, chrf++ (chrF with word 1- and "
                                            "2-grams), ter. Cased unless --lowercase.")
    ] = "bleu",
    tokenize: Annotated[Literal[TOKENIZERS], typer.Option(
        "--tokenize", help="BLEU's tokenizer (sacreBLEU's --tokenize): 13a (WMT's), intl (Unicode punctuation and "
                           "symbols), none (already tokenized), char (each character; languages without "
                           "spaces), zh (Chinese).")] = "13a",
    lowercase: Annotated[bool, typer.Option("--lowercase", help="Score lowercased text (every metric; the "
                                                                "signature says case:lc).")] = False,
    confidence: Annotated[bool, typer.Option(
        "--confidence", help="A 95% bootstrap interval for each score (--samples resamples, --seed), as "
                             "sacreBLEU's --confidence.")] = False,
    sentence: Annotated[bool, typer.Option(
        "--sentence", help="One line per hypothesis with its own scores (tab-separated, in --metrics order; "
                           "sentence BLEU with effective order); the corpus scores go to stderr.")] = False,
    score_only: Annotated[bool, typer.Option("--score-only", help="Only the numbers: one per metric per "
                                                                  "line (sacreBLEU's --score-only).")] = False,
    paired_bootstrap: Annotated[
        Optional[Path],
        typer.Option("--paired-bootstrap", metavar="BASELINE",
                     help="Another system's translations of the same source: test whether the two differ "
                          "significantly (sacreBLEU's paired bootstrap)."),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", help="Bootstrap resamples for --paired-bootstrap and "
                                                          "--confidence.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the bootstrap (same seed, same "
                                                     "p-value and interval).")] = 12345,
    alpha: Annotated[float, typer.Option("--significance", help="Significance level for --paired-bootstrap.")] = 0.05,
    json_output: JsonOpt = False,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Score translations against references with sacreBLEU (cased, 13a tokenization by default)."""
    from rnntool.kinds.translation import bleu
    from rnntool.textio import display_name, is_stdin, read_lines

    console.quiet = quiet
    names = bleu.parse_metrics(metrics)
    if sentence and (paired_bootstrap is not None or confidence):
        raise UsageError("--sentence scores each line alone; --paired-bootstrap and --confidence are about the "
                         "corpus: drop one")
    if score_only and json_output:
        raise UsageError("--score-only and --json are two output formats; give one")
    scoring = bleu.Scoring(tokenize=tokenize, lowercase=lowercase, confidence=samples if confidence else 0,
                           seed=seed).check()
    inputs = [hypotheses, *ref] + ([paired_bootstrap] if paired_bootstrap is not None else [])
    if sum(is_stdin(None if p is None else str(p)) for p in inputs) > 1:
        raise UsageError("only one input can be stdin ('-'); give the others as files")
    hyp_name = display_name(hypotheses)
    ref_names = [display_name(str(p)) for p in ref]
    hyps = list(read_lines(hypotheses, on_bad_utf8=on_bad_utf8))
    refs = [list(read_lines(str(p), on_bad_utf8=on_bad_utf8)) for p in ref]  # str: '-' is stdin, not a file
    bleu.check_line_counts(hyps, refs, hyp_name, ref_names)
    baseline: list[str] | None = None
    if paired_bootstrap is not None:
        baseline = list(read_lines(str(paired_bootstrap), on_bad_utf8=on_bad_utf8))
        bleu.check_line_counts(hyps, [baseline], hyp_name, [str(paired_bootstrap)])

    if sentence:
        for row in bleu.sentence_scores(hyps, refs, names, scoring):
            if json_output:
                console.emit_json({name: round(v, 4) for name, v in row.items()})
            else:
                console.emit("\t".join(f"{v:.2f}" for v in row.values()))
    scores = bleu.corpus_scores(hyps, refs, names, scoring)
    console.log(f"scored {len(hyps)} sentences of {hyp_name} against {len(refs)} reference(s)")
    if sentence:
        for name in names:
            console.log(scores[name]["text"])
        return
    tests: dict[str, dict[str, Any]] = {}
    if baseline is not None:
        console.log(f"paired bootstrap against {paired_bootstrap} ({samples} resamples, seed {seed})")
        for name in names:
            tests[name] = bleu.paired_bootstrap(baseline, hyps, refs, metric=name, seed=seed,
                                                n_samples=samples, alpha=alpha, scoring=scoring)

    if json_output:
        out: dict[str, Any] = {"hypotheses": hyp_name, "references": ref_names, "sentences": len(hyps)}
        for name in names:
            entry = dict(scores[name])
            if name in tests:
                t = tests[name]
                entry["paired_bootstrap"] = {
                    "baseline": str(paired_bootstrap), "baseline_score": t["score_a"],
                    "difference": t["difference"], "p_value": t["p_value"], "significant": t["significant"],
                    "alpha": t["alpha"], "mean": t["mean_b"], "ci": t["ci_b"], "baseline_mean": t["mean_a"],
                    "baseline_ci": t["ci_a"], "samples": t["n_samples"], "seed": t["seed"],
                    "signature": t["signature"],
                }
            out[name] = entry
        console.emit_json(out)
        return
    for name in names:
        if score_only:
            console.emit(f"{(tests[name]['score_b'] if name in tests else scores[name]['score']):.2f}")
            continue
        if name not in tests:
            console.emit(scores[name]["text"])
            continue
        t = tests[name]
        verdict = "significant" if t["significant"] else "not significant"
        console.emit(
            f"{scores[name]['name']}|{t['signature']} = {t['score_b']:.2f} ({hyp_name}) vs {t['score_a']:.2f} "
            f"({paired_bootstrap}), difference {t['difference']:+.2f}, p = {t['p_value']:.4f}: "
            f"{verdict} at {t['alpha']:g}"
        )

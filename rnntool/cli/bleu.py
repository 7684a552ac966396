"""`rnntool evaluate bleu`: sacreBLEU's BLEU / chrF / TER, with signatures, and the paired bootstrap test."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rnntool.cli.app import evaluate_app
from rnntool.cli.console import console
from rnntool.cli.options import InputArg, JsonOpt, OnBadUtf8Opt, QuietOpt
from rnntool.errors import UsageError


@evaluate_app.command("bleu")
def evaluate_bleu(
    hypotheses: InputArg = None,
    ref: Annotated[
        list[Path],
        typer.Option("--ref", "-r", metavar="FILE", help="Reference translations, one per line; repeat for several references "
                                         "(--ref a.de --ref b.de).", show_default=False),
    ] = ...,  # type: ignore[assignment]
    metrics: Annotated[
        str, typer.Option("--metrics", help="Comma-separated metrics: bleu, chrf, ter (all cased).")
    ] = "bleu",
    paired_bootstrap: Annotated[
        Optional[Path],
        typer.Option("--paired-bootstrap", metavar="BASELINE",
                     help="Another system's translations of the same source: test whether the two differ "
                          "significantly (sacreBLEU's paired bootstrap)."),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", help="Bootstrap resamples for --paired-bootstrap.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for --paired-bootstrap (same seed, same p-value).")] = 12345,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level for --paired-bootstrap.")] = 0.05,
    json_output: JsonOpt = False,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Score translations against references with sacreBLEU (cased, 13a tokenization)."""
    from rnntool.kinds.translation import bleu
    from rnntool.textio import display_name, is_stdin, read_lines

    console.quiet = quiet
    names = bleu.parse_metrics(metrics)
    inputs = [hypotheses, *ref] + ([paired_bootstrap] if paired_bootstrap is not None else [])
    if sum(is_stdin(None if p is None else str(p)) for p in inputs) > 1:
        raise UsageError("only one input can be stdin ('-'); give the others as files")
    hyp_name = display_name(hypotheses)
    ref_names = [str(p) for p in ref]
    hyps = list(read_lines(hypotheses, on_bad_utf8=on_bad_utf8))
    refs = [list(read_lines(p, on_bad_utf8=on_bad_utf8)) for p in ref]
    bleu.check_line_counts(hyps, refs, hyp_name, ref_names)
    baseline: list[str] | None = None
    if paired_bootstrap is not None:
        baseline = list(read_lines(paired_bootstrap, on_bad_utf8=on_bad_utf8))
        bleu.check_line_counts(hyps, [baseline], hyp_name, [str(paired_bootstrap)])

    scores = bleu.corpus_scores(hyps, refs, names)
    console.log(f"scored {len(hyps)} sentences of {hyp_name} against {len(refs)} reference(s)")
    tests: dict[str, dict[str, Any]] = {}
    if baseline is not None:
        console.log(f"paired bootstrap against {paired_bootstrap} ({samples} resamples, seed {seed})")
        for name in names:
            tests[name] = bleu.paired_bootstrap(baseline, hyps, refs, metric=name, seed=seed,
                                                n_samples=samples, alpha=alpha)

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

"""`rnntool evaluate bleu` and rnntool.kinds.translation.bleu: equal to sacreBLEU's own API, errors, paired bootstrap."""

from __future__ import annotations

import json
import random

import pytest
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.significance import PairedTest

from conftest import invoke, rnntool_cmd
from rnntool.kinds.translation import bleu
from rnntool.errors import BadInput, UsageError

WORDS = "the a cat dog sees likes river house red blue old man child teacher with at night today".split()


def make_refs(n=120, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))).capitalize() + "." for _ in range(n)]


def perturb(lines, rate, seed):
    """Replace each word with probability ``rate``: a worse system the higher the rate."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) if rng.random() < rate else w for w in line.split()) for line in lines]


@pytest.fixture
def files(tmp_path):
    refs = make_refs()
    refs2 = perturb(refs, 0.2, 1)
    good, bad = perturb(refs, 0.1, 2), perturb(refs, 0.6, 3)
    paths = {}
    for name, lines in {"ref": refs, "ref2": refs2, "good": good, "bad": bad}.items():
        paths[name] = tmp_path / f"{name}.txt"
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths, {"ref": refs, "ref2": refs2, "good": good, "bad": bad}


def test_core_scores_equal_sacrebleu(files):
    _, t = files
    got = bleu.corpus_scores(t["good"], [t["ref"], t["ref2"]], ("bleu", "chrf", "ter"))
    assert got["bleu"]["score"] == BLEU().corpus_score(t["good"], [t["ref"], t["ref2"]]).score
    assert got["chrf"]["score"] == CHRF().corpus_score(t["good"], [t["ref"], t["ref2"]]).score
    ter = TER(case_sensitive=True)
    assert got["ter"]["score"] == ter.corpus_score(t["good"], [t["ref"], t["ref2"]]).score
    assert got["ter"]["signature"] == ter.get_signature().format()
    # one reference stream given as a plain list of lines
    assert bleu.corpus_bleu(t["good"], t["ref"]) == BLEU().corpus_score(t["good"], [t["ref"]]).score
    assert bleu.corpus_bleu(t["good"], t["ref"]) > bleu.corpus_bleu(t["bad"], t["ref"])


def test_core_errors(files):
    _, t = files
    with pytest.raises(BadInput, match="120 lines .* 119"):
        bleu.corpus_scores(t["good"], [t["ref"][:-1]])
    with pytest.raises(BadInput):
        bleu.corpus_scores([], [[]])
    with pytest.raises(UsageError, match="choose from bleu, chrf, chrf\\+\\+, ter"):
        bleu.parse_metrics("bleu,meteor")
    assert bleu.parse_metrics("BLEU, chrf,bleu") == ("bleu", "chrf")


@pytest.mark.parametrize("metrics", ["bleu", "chrf", "ter", "bleu,chrf,ter"])
def test_cli_json_equals_sacrebleu_multi_ref(files, metrics):
    p, t = files
    r = invoke("evaluate", "bleu", "--ref", p["ref"], "--ref", p["ref2"], "--metrics", metrics, "--json", p["good"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    streams = [t["ref"], t["ref2"]]
    api = {"bleu": BLEU(), "chrf": CHRF(), "ter": TER(case_sensitive=True)}
    for name in metrics.split(","):
        assert out[name]["score"] == api[name].corpus_score(t["good"], streams).score
        assert out[name]["signature"] == api[name].get_signature().format()
        assert "nrefs:2" in out[name]["signature"]
    assert out["sentences"] == 120 and out["references"] == [str(p["ref"]), str(p["ref2"])]


def test_cli_text_output_is_one_line_per_metric_with_signature(files):
    p, t = files
    r = invoke("evaluate", "bleu", "-r", p["ref"], "--metrics", "bleu,chrf", input=p["good"].read_text())
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert f"= {BLEU().corpus_score(t['good'], [t['ref']]).score:.2f} " in lines[0]
    assert lines[1].startswith("chrF2|nrefs:1|case:mixed")


def test_cli_errors(files, tmp_path):
    p, _ = files
    short = tmp_path / "short.txt"
    short.write_text("one line\n", encoding="utf-8")
    r = invoke("evaluate", "bleu", "--ref", p["ref"], short)
    assert r.exit_code == 1
    msg = r.stderr.strip()
    assert msg.startswith("rnntool: error:") and len(msg.splitlines()) == 1
    assert "1 lines" in msg and "120" in msg and str(short) in msg and str(p["ref"]) in msg
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    r = invoke("evaluate", "bleu", "--ref", p["ref"], empty)
    assert r.exit_code == 1 and "empty" in r.stderr
    r = invoke("evaluate", "bleu", "--ref", p["ref"], input="")
    assert r.exit_code == 1 and "empty" in r.stderr
    r = invoke("evaluate", "bleu", p["good"])  # no --ref
    assert r.exit_code == 2 and "--ref" in r.stderr
    r = invoke("evaluate", "bleu", "--ref", p["ref"], "--metrics", "rouge", p["good"])
    assert r.exit_code == 2 and "bleu, chrf, chrf++, ter" in r.stderr
    r = invoke("evaluate", "bleu", "--ref", "-", "-")
    assert r.exit_code == 2 and "stdin" in r.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\xfe\n")
    r = invoke("evaluate", "bleu", "--ref", bad, p["good"])
    assert r.exit_code == 1 and f"{bad}:2: invalid UTF-8" in r.stderr
    for r in [invoke("evaluate", "bleu", "--ref", p["ref"], "--paired-bootstrap", short, p["good"])]:
        assert r.exit_code == 1 and "Traceback" not in r.output


def test_paired_bootstrap_core_matches_sacrebleu_and_repeats(files):
    _, t = files
    res = bleu.paired_bootstrap(t["bad"], t["good"], t["ref"], seed=12345, n_samples=200)
    sigs, direct = PairedTest([("a", t["bad"]), ("b", t["good"])], {"bleu": BLEU()}, [t["ref"]],
                              test_type="bs", n_samples=200)()
    assert res["score_a"] == direct["BLEU"][0].score and res["score_b"] == direct["BLEU"][1].score
    assert res["p_value"] == direct["BLEU"][1].p_value
    assert res["significant"] and res["p_value"] < 0.05 and res["difference"] > 0
    assert "seed:12345" in res["signature"] and "bs:200" in res["signature"]
    assert bleu.paired_bootstrap(t["bad"], t["good"], t["ref"], seed=12345, n_samples=200) == res
    same = bleu.paired_bootstrap(t["good"], t["good"], t["ref"], n_samples=200)
    assert not same["significant"] and same["difference"] == 0
    with pytest.raises(BadInput):
        bleu.paired_bootstrap(t["good"], t["good"][:-1], t["ref"])
    with pytest.raises(UsageError):
        bleu.paired_bootstrap(t["good"], t["bad"], t["ref"], seed=0)


def test_cli_paired_bootstrap(files):
    p, t = files
    r = invoke("evaluate", "bleu", "--ref", p["ref"], "--paired-bootstrap", p["bad"], "--samples", "200",
               "--metrics", "bleu,chrf", "--json", p["good"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    want = bleu.paired_bootstrap(t["bad"], t["good"], t["ref"], n_samples=200)
    pb = out["bleu"]["paired_bootstrap"]
    assert out["bleu"]["score"] == want["score_b"] and pb["baseline_score"] == want["score_a"]
    assert pb["p_value"] == want["p_value"] and pb["significant"] is True
    assert out["chrf"]["paired_bootstrap"]["significant"] is True
    r = invoke("evaluate", "bleu", "--ref", p["ref"], "--paired-bootstrap", p["good"], "--samples", "100", p["good"])
    assert r.exit_code == 0, r.output
    assert "not significant at 0.05" in r.stdout and "difference +0.00" in r.stdout


def test_shell_pipeline_from_stdin(files):
    import subprocess

    p, t = files
    cmd = f"cat {p['good']} | {rnntool_cmd()} evaluate bleu --ref {p['ref']} --json -q"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["bleu"]["score"] == BLEU().corpus_score(t["good"], [t["ref"]]).score

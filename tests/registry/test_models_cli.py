"""`rnntool models ...` through the real CLI: exit codes, stdout (text and --json), files on disk."""

from __future__ import annotations

import json
import subprocess


from conftest import fails, invoke, ok, rnntool_cmd, run_cli
from rnntool.registry.store import Registry


def publish(name="foo", kind="lm", n=1, metrics=None, data=None, parents=None):
    reg = Registry.open()
    out = []
    for i in range(n):
        with reg.staging() as tmp:
            (tmp / ("tokenizer.model" if kind == "tokenizer" else "model.safetensors")).write_bytes(
                f"{name}-{i}".encode() * 10)
            out.append(reg.publish(tmp, name=name, kind=kind, metrics=metrics or {"ppl": 10.0 + i},
                                   data=data, parents=parents))
    return out


def test_every_models_command_has_help():
    for cmd in ["list", "show", "alias", "rm", "gc", "path", "verify", "export", "import"]:
        r = ok(invoke("models", cmd, "--help"))
        assert "Usage" in r.stdout


def test_list_text_json_and_kind(registry):
    r = ok(invoke("models", "list"))
    assert r.stdout == "" and "no models in" in r.stderr
    assert ok(invoke("models", "list", "-q")).stderr == ""
    publish("spm", kind="tokenizer", metrics={"vocab": 8000})
    publish("foo", n=2)
    r = ok(invoke("models", "list"))
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["MODEL", "KIND", "CREATED"]
    assert [line.split()[0] for line in lines[1:]] == ["foo@1", "foo@2", "spm@1"]
    assert "vocab=8000" in r.stdout
    data = json.loads(ok(invoke("models", "list", "--json", "--kind", "lm")).stdout)
    assert [d["ref"] for d in data] == ["foo@1", "foo@2"]
    assert data[0]["kind"] == "lm" and data[0]["metrics"] == {"ppl": 10.0} and data[0]["aliases"] == []
    assert data[0]["path"] == str(registry / "models" / "foo" / "1")
    assert [d["ref"] for d in json.loads(ok(invoke("models", "list", "spm", "--json")).stdout)] == ["spm@1"]
    fails(invoke("models", "list", "--kind", "nope"), 2, "--kind")


def test_list_shows_the_kinds_key_metrics_and_json_all_of_them(registry):
    many = {"val_ppl": 12.5, "val_bpc": 1.25, "val_loss": 2.5, "tokens_per_s": 8000.0, "train_tokens": 10 ** 7,
            "best_step": 1200, "val_nats_per_char": 0.87, "elapsed": 600.2}
    publish("lm", metrics=many)
    r = ok(invoke("models", "list"))
    row = r.stdout.splitlines()[1]
    assert "val_ppl=12.5 val_bpc=1.25" in row and "tokens_per_s" not in row and len(row) < 100, row
    assert json.loads(ok(invoke("models", "list", "--json")).stdout)[0]["metrics"] == many


def test_registry_option_overrides_env(tmp_path):
    other = tmp_path / "other"
    reg = Registry.open(other)
    with reg.staging() as tmp:
        (tmp / "tokenizer.model").write_bytes(b"x")
        reg.publish(tmp, name="elsewhere", kind="tokenizer")
    assert ok(invoke("models", "list")).stdout == ""
    assert "elsewhere@1" in ok(invoke("models", "list", "--registry", other)).stdout


def test_show_history_and_one_version(registry, corpus):
    from rnntool.textio import fingerprint_file

    publish("foo", n=3, data=[fingerprint_file(corpus)], parents={"tokenizer": "spm@1"})
    ok(invoke("models", "alias", "foo@2", "prod"))
    r = ok(invoke("models", "show", "foo"))
    rows = [line.split() for line in r.stdout.splitlines()]
    assert rows[0][:4] == ["VERSION", "KIND", "CREATED", "ALIASES"]
    assert [row[0] for row in rows[1:]] == ["1", "2", "3"]
    assert "prod" in r.stdout.splitlines()[2] and "tokenizer=spm@1" in r.stdout and "600 lines" in r.stdout
    hist = json.loads(ok(invoke("models", "show", "foo", "--json")).stdout)
    assert hist["aliases"] == {"prod": 2}
    assert [v["version"] for v in hist["versions"]] == [1, 2, 3]
    assert hist["versions"][1]["aliases"] == ["prod"] and hist["versions"][0]["data"]["lines"] == 600
    assert hist["versions"][2]["metrics"] == {"ppl": 12.0}
    one = ok(invoke("models", "show", "foo@prod"))
    assert "ref:      foo@2" in one.stdout and "tokenizer=spm@1" in one.stdout and "model.safetensors" in one.stdout
    doc = json.loads(ok(invoke("models", "show", "foo@2", "--json")).stdout)
    assert doc["ref"] == "foo@2" and doc["aliases"] == ["prod"]
    assert doc["manifest"]["version"] == 2 and doc["manifest"]["kind"] == "lm"
    assert doc["manifest"]["data"][0]["sha256"] == fingerprint_file(corpus)["sha256"]


def test_unknown_model_did_you_mean_and_bad_name(registry):
    publish("shakespeare")
    fails(invoke("models", "show", "shakespear"), 1, "did you mean 'shakespeare'", "rnntool models list")
    fails(invoke("models", "path", "shakespeare@9"), 1, "no version 9")
    fails(invoke("models", "show", "../x"), 2, "invalid model reference")
    fails(invoke("models", "rm", "../x@1"), 2)
    fails(invoke("models", "alias", "shakespeare@1", "../x"), 2, "invalid alias")
    r = run_cli("models", "show", "shakespear")  # a real process: one line, no traceback
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "did you mean" in r.stderr


def test_alias_set_move_remove(registry):
    publish(n=3)
    ok(invoke("models", "alias", "foo@1", "prod"))
    ok(invoke("models", "alias", "foo@3", "prod"))
    assert (registry / "models" / "foo" / "aliases" / "prod").read_text().strip() == "3"
    assert ok(invoke("models", "path", "foo@prod")).stdout.strip().endswith("/foo/3")
    fails(invoke("models", "alias", "foo", "prod"), 2, "foo@N")
    fails(invoke("models", "alias", "foo@7", "prod"), 1, "no version 7")
    fails(invoke("models", "alias", "foo@1", "latest"), 2, "reserved")
    ok(invoke("models", "alias", "--rm", "foo", "prod"))
    assert not (registry / "models" / "foo" / "aliases" / "prod").exists()
    fails(invoke("models", "alias", "--rm", "foo", "prod"), 1, "no alias 'prod'")


def test_rm_versions(registry):
    publish(n=4)
    ok(invoke("models", "alias", "foo@2", "prod"))
    r = ok(invoke("models", "rm", "foo@1"))
    assert r.stdout == "foo@1\n" and not (registry / "models" / "foo" / "1").exists()
    fails(invoke("models", "rm", "foo@prod"), 1, "aliased", "--force")
    assert (registry / "models" / "foo" / "2").exists()
    fails(invoke("models", "rm", "foo"), 2, "--all")
    r = ok(invoke("models", "rm", "foo@prod", "--force", "--json"))
    assert json.loads(r.stdout) == [{"ref": "foo@2", "path": str(registry / "models" / "foo" / "2")}]
    assert not (registry / "models" / "foo" / "aliases" / "prod").exists()
    assert ok(invoke("models", "rm", "foo", "--all")).stdout.split() == ["foo@3", "foo@4"]
    fails(invoke("models", "show", "foo"), 1, "no model 'foo'")
    fails(invoke("models", "rm", "foo@3"), 1)


def test_gc_keeps_k_and_aliased(registry):
    publish(n=5)
    publish("bar", n=2)
    ok(invoke("models", "alias", "foo@1", "prod"))
    r = ok(invoke("models", "gc", "foo", "--keep", "2", "--dry-run"))
    assert r.stdout.split() == ["foo@2", "foo@3"] and "would remove" in r.stderr
    assert sorted(p.name for p in (registry / "models" / "foo").iterdir() if p.name.isdigit()) == list("12345")
    r = ok(invoke("models", "gc", "foo", "--keep", "2", "--json"))
    assert [d["ref"] for d in json.loads(r.stdout)] == ["foo@2", "foo@3"]
    assert sorted(p.name for p in (registry / "models" / "foo").iterdir() if p.name.isdigit()) == ["1", "4", "5"]
    assert ok(invoke("models", "gc", "--keep", "0")).stdout.split() == ["bar@1", "bar@2", "foo@4", "foo@5"]
    assert [d["ref"] for d in json.loads(ok(invoke("models", "list", "--json")).stdout)] == ["foo@1"]
    fails(invoke("models", "gc", "foo", "--keep", "-1"), 2)
    fails(invoke("models", "gc", "nope"), 1, "no model 'nope'")


def test_verify_ok_and_corrupt(registry):
    assert ok(invoke("models", "verify")).stdout == ""
    publish(n=2)
    publish("spm", kind="tokenizer")
    r = ok(invoke("models", "verify"))
    assert r.stdout.split("\n")[:3] == ["ok      foo@1", "ok      foo@2", "ok      spm@1"]
    weights = registry / "models" / "foo" / "2" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[0] ^= 0x20
    weights.write_bytes(bytes(data))
    r = fails(invoke("models", "verify"), 1, str(weights), "sha256 mismatch")
    assert "FAILED  foo@2" in r.stdout and "ok      foo@1" in r.stdout
    assert ok(invoke("models", "verify", "foo@1")).stdout.startswith("ok")
    r = fails(invoke("models", "verify", "foo"), 1, str(weights))  # a bare NAME: all its versions
    assert r.stdout.split()[:3] == ["ok", "foo@1", "FAILED"] and "spm" not in r.stdout
    fails(invoke("models", "verify", "foo@2"), 1, str(weights))
    doc = json.loads(fails(invoke("models", "verify", "--json"), 1).stdout)
    assert [d["ok"] for d in doc] == [True, False, True] and str(weights) in doc[1]["problems"][0]
    weights.write_bytes(bytes(data[:5]))
    fails(invoke("models", "verify", "foo@2"), 1, str(weights), "truncated")


def test_path_for_scripts(registry):
    publish(n=2)
    r = subprocess.run(["bash", "-c", f"ls \"$({rnntool_cmd()} models path foo)\""],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["manifest.json", "model.safetensors"]
    assert ok(invoke("models", "path", "foo@1")).stdout == f"{registry / 'models' / 'foo' / '1'}\n"


def test_export_import(registry, tmp_path):
    publish(n=2, metrics={"ppl": 5.0})
    archive = tmp_path / "foo.tar.gz"
    assert ok(invoke("models", "export", "foo@2", archive)).stdout.strip() == str(archive)
    ok(invoke("models", "export", "foo@1", tmp_path / "dir"))
    assert (tmp_path / "dir" / "manifest.json").exists()
    fails(invoke("models", "export", "foo@1", tmp_path / "dir"), 2, "already exists")
    other = tmp_path / "other"
    assert ok(invoke("models", "import", archive, "--registry", other)).stdout == "foo@1\n"
    doc = json.loads(ok(invoke("models", "import", tmp_path / "dir", "--name", "copy", "--registry", other,
                               "--json")).stdout)
    assert doc["ref"] == "copy@1" and doc["metrics"] == {"ppl": 5.0}
    assert ok(invoke("models", "verify", "--registry", other)).stdout.split() == ["ok", "copy@1", "ok", "foo@1"]
    assert ok(invoke("models", "import", archive)).stdout == "foo@3\n"
    (tmp_path / "junk.tar.gz").write_bytes(b"junk")
    fails(invoke("models", "import", tmp_path / "junk.tar.gz"), 1)
    fails(invoke("models", "import", tmp_path / "missing"), 1, "no such file")


def test_export_refuses_a_corrupt_bundle(registry, tmp_path):
    [b] = publish()
    (b.path / "model.safetensors").write_bytes(b"x")
    fails(invoke("models", "export", "foo@1", tmp_path / "x.tar.gz"), 1, "model.safetensors", "truncated")
    assert not (tmp_path / "x.tar.gz").exists()


def test_bundle_directory_reference(registry, tmp_path):
    from rnntool.registry.store import write_bundle

    src = tmp_path / "src"
    src.mkdir()
    (src / "tokenizer.model").write_bytes(b"spm")
    out = write_bundle(src, tmp_path / "mytok", name="mytok", kind="tokenizer").path
    assert ok(invoke("models", "path", out)).stdout.strip() == str(out)
    doc = json.loads(ok(invoke("models", "show", out, "--json")).stdout)
    assert doc["manifest"]["name"] == "mytok" and doc["manifest"]["version"] is None
    assert ok(invoke("models", "verify", out)).stdout.startswith("ok")
    fails(invoke("models", "rm", out), 2, "not on directories")


def test_average_publishes_the_mean_of_the_weights(registry, corpus):
    from safetensors.torch import load_file

    tiny = ("--vocab-size", "300", "--embed-dim", "16", "--hidden-dim", "16", "--layers", "1", "--max-steps", "3",
            "--batch-size", "4", "--bptt", "8", "-q")
    for seed in ("1", "2", "3"):
        ok(invoke("train", "lm", corpus, "--name", "lm", "--seed", seed, "-t", "lm-tokenizer@1", *tiny)
           if seed != "1" else invoke("train", "lm", corpus, "--name", "lm", "--seed", seed, *tiny))
    r = ok(invoke("models", "average", "lm@1", "lm@2", "lm@3", "--name", "avg"))
    assert r.stdout == "avg@1\n"
    reg = Registry.open()
    avg, parts = reg.load("avg@1"), [reg.load(f"lm@{i}") for i in (1, 2, 3)]
    weights = [load_file(b.file("model.safetensors")) for b in parts]
    mean = load_file(avg.file("model.safetensors"))
    for key, tensor in mean.items():
        expected = sum(w[key].double() for w in weights) / 3
        assert (tensor.double() - expected).abs().max() < 1e-6, key
    assert avg.kind == "lm" and avg.metrics == {} and avg.parents["averaged_3"] == "lm@3"
    assert avg.files["tokenizer.model"]["sha256"] == parts[0].files["tokenizer.model"]["sha256"]
    ok(invoke("evaluate", "perplexity", "-m", "avg", corpus))  # a working model
    # only versions of one model average
    ok(invoke("train", "lm", corpus, "--name", "wide", "-t", "lm-tokenizer@1", *tiny, "--hidden-dim", "24"))
    fails(invoke("models", "average", "lm@1", "wide@1", "--name", "x"), 2, "different model settings")
    fails(invoke("models", "average", "lm@1", "--name", "x"), 2, "at least two")
    ok(invoke("train", "lm", corpus, "--name", "other", *tiny, "--vocab-size", "310"))
    fails(invoke("models", "average", "lm@1", "other@1", "--name", "x"), 2, "different model settings")


def test_show_counts_a_parallel_corpus_in_pairs_and_leaves_validation_out(registry):
    def fp(role, lines, size):
        return {"path": f"/data/{role}.txt", "sha256": role * 4, "bytes": size, "lines": lines, "role": role}

    publish("mt", kind="translation", data=[fp("train-src", 29000, 1_800_000), fp("train-tgt", 29000, 2_100_000),
                                            fp("valid-src", 1014, 64_000), fp("valid-tgt", 1014, 76_000)])
    publish("news", kind="lm", data=[fp("train", 40000, 1_000_000), fp("valid", 4000, 100_000)])
    assert "3.9 MB/29000 pairs" in ok(invoke("models", "show", "mt")).stdout
    assert "1.0 MB/40000 lines" in ok(invoke("models", "show", "news")).stdout
    one = ok(invoke("models", "show", "mt@1")).stdout
    assert "data:     valid-src: /data/valid-src.txt (64.0 KB, 1014 lines" in one, one

"""`rnntool models ...`: list, show, alias, rm, gc, path, verify, export, import, average, shortlist, vectors.

    rnntool models list --kind lm
    rnntool models show shakespeare             # every version: metrics, data, parents, aliases
    rnntool models show shakespeare --plot h.png  # validation metric per version (pip install 'rnntool[plot]')
    rnntool models alias shakespeare@3 prod
    rnntool models verify                       # all checksums of all versions; exit 1 naming a bad file
    rnntool models gc --runs -n                 # also list finished/abandoned run directories
    cp -r "$(rnntool models path shakespeare@prod)" /backup/
    rnntool models vectors shakespeare -o words.vec.gz   # its input embedding table, word2vec text
"""


import datetime as _dt
import json
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from rnntool.registry import history
from rnntool.cli.app import models_app
from rnntool.cli.console import console
from rnntool.cli.options import JsonOpt, OnBadUtf8Opt, QuietOpt, RegistryOpt, open_registry, side_option
from rnntool.errors import InvalidName, UsageError
from rnntool.registry.store import KINDS, MANIFEST, Bundle, ModelRef, Registry, raise_for_results
from rnntool.registry.run_gc import DEFAULT_RUNS_OLDER_THAN, RunDir

RefArg = Annotated[str, typer.Argument(help="NAME (latest), NAME@VERSION, NAME@ALIAS or a bundle directory.")]


def _open(registry: Optional[Path], quiet: bool) -> Registry:
    console.quiet = quiet
    return open_registry(registry)


def _warn_broken(reg: Registry, name: str | None = None) -> None:
    """Listings show the valid versions; each broken one is a warning saying how to remove it."""
    for b in reg.broken_versions(name):
        console.warn(b.message())


# -- formatting -----------------------------------------------------------------------------------
def _when(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        return _dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def _size(n: int) -> str:
    x = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if x < 1000 or unit == "GB":
            return f"{int(x)} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1000
    return f"{n} B"  # pragma: no cover


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _pairs(d: dict) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in d.items()) or "-"


def _data_text(b: Bundle) -> str:
    """The training data: lines, or pairs of a parallel corpus (validation data apart, in `models show REF`)."""
    train = [d for d in b.data if str(d.get("role", "train")).startswith("train")]
    if not train:
        return "-"
    size = _size(sum(int(d.get("bytes") or 0) for d in train))
    sides = [d for d in train if d.get("role") in ("train-src", "train-tgt")]
    if sides:  # one line per pair on each side
        return f"{size}/{int(sides[0].get('lines') or 0)} pairs"
    return f"{size}/{sum(int(d.get('lines') or 0) for d in train)} lines"


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        console.emit("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _is_history(reg: Registry, ref: str) -> bool:
    """A bare NAME shows the model's history, unless only a bundle directory of that name exists."""
    if "@" in ref or "/" in ref or ref.startswith((".", "~")):
        return False
    try:
        ModelRef.parse(ref)
    except InvalidName:
        return False  # maybe a directory; resolve() decides and explains
    return bool(reg.versions(ref)) or not (Path(ref) / MANIFEST).is_file()


def _version_json(b: Bundle, aliases_of) -> dict:
    return {**b.summary(), "aliases": aliases_of(b)}


def _alias_lookup(reg: Registry):
    """``aliases_of(bundle)`` that reads each model's aliases once, however many versions ask."""
    by_name: dict[str, dict[int, list[str]]] = {}

    def aliases_of(b: Bundle) -> list[str]:
        if b.version is None:
            return []
        if b.name not in by_name:
            by_name[b.name] = reg.aliases_by_version(b.name)
        return by_name[b.name].get(b.version, [])

    return aliases_of


# -- commands -------------------------------------------------------------------------------------
@models_app.command("list")
def models_list(
    name: Annotated[Optional[str], typer.Argument(help="Only this model's versions.", show_default=False)] = None,
    kind: Annotated[
        Optional[Literal[KINDS]], typer.Option("--kind", help="Only models of this kind.", show_default=False)
    ] = None,
    json_out: JsonOpt = False,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """List model versions in the registry, with each kind's key metrics (--json: every metric)."""
    reg = _open(registry, quiet)
    bundles = reg.list(name, kind=kind)
    _warn_broken(reg, name)
    aliases_of = _alias_lookup(reg)
    if json_out:
        console.emit_json([_version_json(b, aliases_of) for b in bundles])
        return
    if not bundles:
        console.log(f"no models in {reg.root}" + (f" of kind {kind}" if kind else ""))
        return
    rows = [
        [b.ref, b.kind, _when(b.created), ",".join(aliases_of(b)) or "-", _size(b.size_bytes),
         _pairs(history.key_metrics(b))]
        for b in bundles
    ]
    _table(["MODEL", "KIND", "CREATED", "ALIASES", "SIZE", "METRICS"], rows)


PlotOpt = Annotated[Optional[Path], typer.Option(
    "--plot", metavar="FILE.png", show_default=False,
    help="Also draw a plot (.png/.svg/.pdf): the validation metric across versions for NAME, the training "
         "curve for NAME@N. Needs matplotlib: pip install 'rnntool\\[plot]'.")]


@models_app.command("show")
def models_show(ref: RefArg, plot: PlotOpt = None, json_out: JsonOpt = False, registry: RegistryOpt = None,
                quiet: QuietOpt = False) -> None:
    """Show a model's history (NAME) or one version's manifest (NAME@N, NAME@ALIAS, DIR)."""
    reg = _open(registry, quiet)
    if _is_history(reg, ref):
        name = ref
        versions = reg.list(name)
        _warn_broken(reg, name)
        aliases_of = _alias_lookup(reg)
        if plot is not None and versions:
            from rnntool.cli.plotting import plot_history

            plot_history(versions, {b.version: aliases_of(b) for b in versions}, plot)
            console.log(f"wrote {plot}")
        if json_out:
            console.emit_json({"name": name, "aliases": reg.aliases(name),
                               "versions": [{**_version_json(b, aliases_of), "promotion": history.promotion(b)}
                                            for b in versions]})
            return
        console.log(f"{name}: {len(versions)} version(s) in {reg.model_dir(name)}")
        promoted = any(history.promotion(b) for b in versions)
        rows = [
            [str(b.version), b.kind, _when(b.created), ",".join(aliases_of(b)) or "-", _data_text(b),
             _pairs(b.parents), *([history.promotion_text(history.promotion(b))] if promoted else []),
             _pairs(history.key_metrics(b))]
            for b in versions
        ]
        _table(["VERSION", "KIND", "CREATED", "ALIASES", "DATA", "PARENTS", *(["PROMOTED"] if promoted else []),
                "METRICS"], rows)
        return
    b = reg.resolve(ref)
    aliases = reg.aliases_of(b)
    if plot is not None:
        from rnntool.cli.plotting import plot_training_curve

        plot_training_curve(b, plot, aliases)
        console.log(f"wrote {plot}")
    if json_out:
        console.emit_json({"ref": b.ref, "path": str(b.path), "aliases": aliases, "manifest": b.manifest})
        return
    m = b.manifest
    lines = [
        ("ref", b.ref),
        ("kind", b.kind),
        ("path", str(b.path)),
        ("created", _when(b.created)),
        ("aliases", ", ".join(aliases) or "-"),
        ("versions", f"rnntool {m.get('rnntool_version')}, torch {m.get('torch_version') or '-'}"),
        ("command", m.get("command") or "-"),
        ("parents", _pairs(b.parents)),
        *([("for", f"{(m.get('extra') or {})['trained_for']} (trained with it, published beside it)")]
          if (m.get("extra") or {}).get("trained_for") else []),
        ("metrics", _pairs(b.metrics)),
    ]
    decision = history.promotion(b)
    if decision:
        lines.append(("promoted", f"{history.promotion_text(decision)} ({decision.get('reason') or '-'})"))
    for d in b.data:
        role = f"{d['role']}: " if d.get("role") else ""
        lines.append(("data", f"{role}{d.get('path')} ({_size(int(d.get('bytes') or 0))}, {d.get('lines')} lines, "
                              f"sha256 {str(d.get('sha256'))[:12]})"))
    if not b.data:
        lines.append(("data", "-"))
    for rel, e in sorted(b.files.items()):
        lines.append(("file", f"{rel} ({_size(e['bytes'])}, sha256 {e['sha256'][:12]})"))
    for key, text in lines:
        console.emit(f"{key + ':':<10}{text}")
    console.emit("config:")
    for line in json.dumps(b.config, indent=2, ensure_ascii=False).splitlines():
        console.emit("  " + line)


@models_app.command("alias")
def models_alias(
    target: Annotated[str, typer.Argument(help="NAME@VERSION to point the alias at (NAME with --rm).")],
    alias: Annotated[str, typer.Argument(help="Alias name, e.g. prod.")],
    remove: Annotated[bool, typer.Option("--rm", help="Remove the alias from model NAME instead.")] = False,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Point an alias (NAME@ALIAS) at a version, or remove it with --rm. Aliases move; versions never change."""
    reg = _open(registry, quiet)
    if remove:
        if "@" in target:
            raise UsageError(f"with --rm give the model NAME, not {target!r}: rnntool models alias --rm NAME ALIAS")
        version = reg.remove_alias(target, alias)
        console.log(f"removed alias {target}@{alias} (was version {version})")
        return
    if "@" not in target:
        raise UsageError(f"give the version to alias: rnntool models alias {target}@N {alias}")
    b = reg.set_alias(target, alias)
    console.log(f"{b.name}@{alias} -> {b.ref}")


@models_app.command("rm")
def models_rm(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION or NAME@ALIAS (or NAME with --all).")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Also remove aliased versions (and their aliases).")] = False,
    all_versions: Annotated[bool, typer.Option("--all", help="Remove every version of NAME.")] = False,
    json_out: JsonOpt = False,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Remove model versions (refuses aliased versions unless --force). Prints what was removed."""
    reg = _open(registry, quiet)
    removed = reg.remove(ref, force=force, all_versions=all_versions)
    _emit_removed(removed, json_out)


def _emit_removed(removed: list, json_out: bool, verb: str = "removed", runs: list[RunDir] | None = None) -> None:
    """Removed versions (``NAME@N``) and, for ``gc --runs``, run directories with their size."""
    if json_out:
        console.emit_json([{"ref": b.ref, "path": str(b.path)} for b in removed]
                          + [{"run": r.path.name, "path": str(r.path), "bytes": r.bytes, "reason": r.reason}
                             for r in runs or []])
        return
    for b in removed:
        console.emit(b.ref)
    for r in runs or []:
        console.emit(f"{r.path}  {_size(r.bytes)}  ({r.reason})")
    also = ""
    if runs is not None:
        dirs = "run directory" if len(runs) == 1 else "run directories"
        also = f" and {len(runs)} {dirs} ({_size(sum(r.bytes for r in runs))})"
    console.log(f"{verb} {len(removed)} version(s){also}")


@models_app.command("gc")
def models_gc(
    name: Annotated[Optional[str], typer.Argument(help="Model to clean up (default: every model).",
                                                  show_default=False)] = None,
    keep: Annotated[int, typer.Option("--keep", min=0, metavar="N", help="How many newest versions to keep.")] = 3,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would be removed.")] = False,
    runs: Annotated[bool, typer.Option(
        "--runs", help="Also remove run directories (REGISTRY/runs/) no training uses any more: those that "
                       "published, hold no checkpoint (after an hour), or were untouched for --runs-older-than.")] = False,
    runs_older_than: Annotated[str, typer.Option(
        "--runs-older-than", metavar="DURATION",
        help="With --runs: how long a run directory with a checkpoint to resume from is kept (e.g. 12h, 7d).")
    ] = DEFAULT_RUNS_OLDER_THAN,
    json_out: JsonOpt = False,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Remove all but the newest --keep versions; aliased versions are always kept. Prints removed refs
    (and, with --runs, removed run directories and their size)."""
    from rnntool.training.config import parse_duration

    older_than = parse_duration(runs_older_than or DEFAULT_RUNS_OLDER_THAN, option="--runs-older-than")
    reg = _open(registry, quiet)
    removed = reg.gc(name, keep=keep, dry_run=dry_run)
    run_dirs = reg.gc_runs(older_than, dry_run=dry_run) if runs else None
    _emit_removed(removed, json_out, verb="would remove" if dry_run else "removed", runs=run_dirs)


@models_app.command("path")
def models_path(ref: RefArg, registry: RegistryOpt = None, quiet: QuietOpt = False) -> None:
    """Print the bundle directory of a model (for scripts)."""
    reg = _open(registry, quiet)
    console.emit(str(reg.resolve(ref).path))


@models_app.command("verify")
def models_verify(
    ref: Annotated[Optional[str], typer.Argument(
        help="NAME (all its versions), NAME@VERSION, NAME@ALIAS or a bundle directory (default: everything).",
        show_default=False)] = None,
    json_out: JsonOpt = False,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Check every file's sha256 against its manifest; exit 1 naming the first bad file."""
    reg = _open(registry, quiet)
    results = reg.verify(ref)
    if json_out:
        console.emit_json([{"ref": r.ref, "path": r.path, "ok": r.ok, "problems": r.problems} for r in results])
    else:
        for r in results:
            console.emit(f"ok      {r.ref}" if r.ok else f"FAILED  {r.ref}  {'; '.join(r.problems)}")
        if not results:
            console.log(f"nothing to verify in {reg.root}")
    raise_for_results(results)


@models_app.command("export")
def models_export(
    ref: RefArg,
    dest: Annotated[Path, typer.Argument(help="A new directory, or a file ending in .tar.gz.")],
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Copy a verified bundle to a directory or a .tar.gz (prints the destination)."""
    reg = _open(registry, quiet)
    out = reg.export(ref, dest)
    console.emit(str(out))


@models_app.command("import")
def models_import(
    path: Annotated[Path, typer.Argument(help="A bundle directory or a .tar.gz made by 'models export'.")],
    name: Annotated[Optional[str], typer.Option("--name", help="Publish under this name instead.")] = None,
    json_out: JsonOpt = False,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Verify a bundle and publish it as a new version (prints the new NAME@VERSION)."""
    reg = _open(registry, quiet)
    b = reg.import_bundle(path, name=name)
    if json_out:
        console.emit_json(_version_json(b, reg.aliases_of))
    else:
        console.emit(b.ref)


@models_app.command("average")
def models_average(
    refs: Annotated[list[str], typer.Argument(metavar="REF", help="The versions to average, e.g. en-de@4 en-de@5 "
                                                                 "en-de@6 (at least two).", show_default=False)],
    name: Annotated[str, typer.Option("--name", help="Publish the average as the next version of this name.",
                                      show_default=False)],
    json_out: JsonOpt = False,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Average several versions' weights into a new version (checkpoint averaging, as fairseq's and
    OpenNMT-py's average_models). The versions must share kind, architecture and tokenizers; the new one
    has no metrics until you evaluate it."""
    from rnntool.registry.averaging import average_versions

    reg = _open(registry, quiet)
    b = average_versions(reg, list(refs), name=name)  # the manifest records this command line
    console.log(f"averaged {len(refs)} versions into {b.ref}")
    if json_out:
        console.emit_json(_version_json(b, reg.aliases_of))
    else:
        console.emit(b.ref)


@models_app.command("shortlist")
def models_shortlist(
    ref: RefArg,
    src: Annotated[Path, typer.Option("--src", help="Source text of a parallel corpus (the training data, say), "
                                                    "one sentence per line.", show_default=False)],
    tgt: Annotated[Path, typer.Option("--tgt", help="Its target text: line N translates --src line N.",
                                      show_default=False)],
    name: Annotated[Optional[str], typer.Option(
        "--name", show_default=False, help="Publish as the next version of this name (default: the model's own).")] = None,
    json_out: JsonOpt = False,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Add a lexical table to a translation model, for `rnntool translate --shortlist` (IBM Model 1 over
    the corpus' subwords), and publish the model with it as a new version: same weights, same metrics.
    Models trained by `rnntool train translate` have one already."""
    from rnntool.kinds.translation.shortlist import publish_with_shortlist

    reg = _open(registry, quiet)
    b = publish_with_shortlist(reg, ref, src, tgt, name=name, on_bad_utf8=on_bad_utf8)
    info = (b.manifest.get("extra") or {}).get("shortlist") or {}
    console.log(f"lexical table from {info.get('pairs')} of {info.get('of_pairs')} sentence pairs; published {b.ref}")
    if json_out:
        console.emit_json(_version_json(b, reg.aliases_of))
    else:
        console.emit(b.ref)


VectorsOutputOpt = Annotated[Optional[Path], typer.Option(
    "-o", "--output", metavar="FILE", show_default=False,
    help="Write to this file (atomically; gzipped when its name ends in .gz) instead of stdout.")]
EmbeddingSideOpt = side_option("Which table of a translation model: the encoder's (src) or the decoder's (tgt) "
                               "(default: src).")


@models_app.command("vectors")
def models_vectors(
    ref: Annotated[str, typer.Argument(help="NAME (latest), NAME@VERSION, NAME@ALIAS or a bundle directory, of a "
                                            "kind with an input embedding table; or a vectors file to rewrite.")],
    output: VectorsOutputOpt = None,
    side: EmbeddingSideOpt = None,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Write a model's input embedding table as word vectors: word2vec's text format (a 'count dim' header,
    then 'word v1 ... vD' per row), every piece or word in id order, specials included. A vectors file
    (GloVe's, gzipped) comes out as word2vec text."""
    from rnntool.textio import display_name, is_stdin
    from rnntool.vectors.io import load_vectors, writable_rows, write_vectors

    reg = _open(registry, quiet)
    vectors = load_vectors(ref, reg, side.value if side else None)
    vectors, dropped = writable_rows(vectors)
    if dropped:
        console.warn(f"left out {len(dropped)} piece{'s' if len(dropped) > 1 else ''} that word2vec's text format "
                     f"cannot hold (whitespace or empty: {', '.join(repr(w) for w in dropped[:5])})")
    dest = None if output is None or is_stdin(str(output)) else output
    write_vectors(vectors, dest)
    where = "stdout" if dest is None else display_name(dest)
    console.log(f"wrote {len(vectors)} vectors of dimension {vectors.dim} to {where}")

"""Target-vocabulary shortlists: decode each sentence over a few hundred likely target pieces instead of the
whole vocabulary (Marian's lexical shortlist; Jean et al., 2015; Schwenk et al., 2007).

    table = build_lexical_table(sources, targets, src_vocab=8000, tgt_vocab=8000)   # IBM Model 1
    table.save(bundle_dir / SHORTLIST_FILE)
    table = LexicalTable.load(path, src_vocab=8000, tgt_vocab=8000)                # checked, never trusted
    vocab = Shortlist(table, per_source=20, frequent=100).vocab(sources)           # (M, V') token ids

A sentence's shortlist is the ``frequent`` most frequent target pieces of the training data, and for each of
its source pieces the ``per_source`` target pieces most likely to translate it, by IBM Model 1's lexical
probabilities t(target | source) (Brown et al., 1993: EM over all source-target piece pairs of each
sentence pair, with a NULL source word). Every row of ``vocab`` starts with ids 0-3 (PAD, UNK, BOS, EOS) at
positions 0-3, so the decoders' BOS and EOS need no mapping; the padding of shorter rows (PAD ids after
position 0) is never chosen (its bias is -inf). The decoder then projects onto those rows only (DecoderState.vocab), and the
search works in positions, which ``decode`` maps back to ids. A piece outside the list cannot be chosen, so
outputs can differ from the full vocabulary's: opt-in (`rnntool translate --shortlist K`).

Files: ``shortlist.safetensors`` in a translation bundle, holding ``translations`` (source vocab, K) int32
target ids best first (-1 = none) and ``frequent`` (N,) int32 target ids, most frequent first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rnntool.errors import CorruptBundle, UsageError
from rnntool.kinds.catalog import SHORTLIST_FILE
FORMAT = "rnntool-shortlist-1"
SPECIALS = 4  # ids 0-3: PAD, UNK, BOS, EOS (rnntool/tokenizers/sentencepiece.py)
TABLE_WIDTH = 100  # target pieces kept per source piece
MAX_LINKS = 10_000_000  # source x target piece pairs used for EM (a sample of the corpus beyond that)
MAX_PAIRS = 1_000_000  # sentence pairs `models shortlist` reads at most (a seeded sample beyond that)
ITERATIONS = 5


@dataclass
class LexicalTable:
    """Per source piece, its likeliest target pieces; and the target pieces by frequency."""

    translations: np.ndarray  # (source vocab, K) int32 target ids, best first; -1 pads
    frequent: np.ndarray  # (N,) int32 target ids seen in training, most frequent first
    info: dict = field(default_factory=dict)  # how it was built (pairs, links, iterations)

    def save(self, path: str | os.PathLike) -> None:
        import torch
        from safetensors.torch import save_file

        save_file({"translations": torch.from_numpy(np.ascontiguousarray(self.translations, dtype=np.int32)),
                   "frequent": torch.from_numpy(np.ascontiguousarray(self.frequent, dtype=np.int32))},
                  str(path), metadata={"format": FORMAT, "info": json.dumps(self.info, sort_keys=True)})

    @classmethod
    def load(cls, path: str | os.PathLike, src_vocab: int, tgt_vocab: int) -> "LexicalTable":
        """Read a table for a model with these vocabulary sizes; CorruptBundle if it does not fit them."""
        from safetensors import SafetensorError, safe_open

        from rnntool.layers.weights import read_safetensors_header

        bad = lambda why: CorruptBundle(f"{path}: not a usable shortlist ({why}); rebuild it with "  # noqa: E731
                                        "`rnntool models shortlist`")
        try:
            header = read_safetensors_header(path)  # sizes checked against the file before anything is read
        except CorruptBundle as e:
            raise bad(str(e).split(" (", 1)[-1].split(");", 1)[0]) from None
        expected = {"translations": 2, "frequent": 1}
        for name, dims in expected.items():
            if name not in header or header[name][0] != "I32" or len(header[name][1]) != dims:
                raise bad(f"no {dims}-d int32 tensor {name!r}")
        if header["translations"][1][0] != src_vocab:
            raise bad(f"it is for a vocabulary of {header['translations'][1][0]} source pieces, the model has "
                      f"{src_vocab}")
        if header["frequent"][1][0] > tgt_vocab:
            raise bad(f"it lists {header['frequent'][1][0]} target pieces, the model has {tgt_vocab}")
        try:
            with safe_open(str(path), framework="np") as f:
                if (f.metadata() or {}).get("format") != FORMAT:
                    raise bad(f"its format is not {FORMAT}")
                translations, frequent = f.get_tensor("translations"), f.get_tensor("frequent")
                info = json.loads((f.metadata() or {}).get("info", "{}"))
        except (SafetensorError, OSError, ValueError) as e:
            raise bad(str(e)) from None
        if ((translations < -1) | (translations >= tgt_vocab)).any() or ((frequent < 0) | (frequent >= tgt_vocab)).any():
            raise bad(f"a target id outside the model's {tgt_vocab} pieces")
        return cls(translations, frequent, info if isinstance(info, dict) else {})


def build_lexical_table(sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], src_vocab: int,
                        tgt_vocab: int, *, width: int = TABLE_WIDTH, iterations: int = ITERATIONS,
                        max_links: int = MAX_LINKS, seed: int = 1) -> LexicalTable:
    """IBM Model 1 over the piece id pairs (each source with a NULL word): the ``width`` likeliest target
    pieces of every source piece. Sentence pairs whose (source + 1) x target links exceed ``max_links`` in
    total are sampled (seeded) down to it, which bounds the memory (about 40 bytes a link at the peak); the
    frequency list counts every target piece."""
    if len(sources) != len(targets):
        raise UsageError(f"{len(sources)} source but {len(targets)} target sentences")
    flat = np.concatenate([np.asarray(t, dtype=np.int64) for t in targets] or [np.zeros(0, dtype=np.int64)])
    counts = np.bincount(flat, minlength=tgt_vocab)[:tgt_vocab]
    counts[:SPECIALS] = 0
    seen = np.flatnonzero(counts)
    frequent = seen[np.lexsort((seen, -counts[seen]))].astype(np.int32)  # most frequent first, ties by id

    # the pairs EM reads: all of them, or a seeded sample in random order until the links would exceed max_links
    links_of = np.array([(len(src) + 1) * len(tgt) for src, tgt in zip(sources, targets)], dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(sources))
    order = order[links_of[order] > 0]
    chosen = order[np.cumsum(links_of[order]) <= max_links]
    n_pairs, n_links = len(chosen), int(links_of[chosen].sum())
    null = src_vocab  # the NULL word: an extra source row
    translations = np.full((src_vocab, width), -1, dtype=np.int32)
    if n_links:
        src_flat = np.concatenate([np.append(np.asarray(sources[i], dtype=np.int32), null) for i in chosen])
        tgt_flat = np.concatenate([np.asarray(targets[i], dtype=np.int32) for i in chosen])  # (n_pos,)
        src_len = np.array([len(sources[i]) + 1 for i in chosen], dtype=np.int64)
        tgt_len = np.array([len(targets[i]) for i in chosen], dtype=np.int64)
        src_start = np.concatenate([[0], np.cumsum(src_len)[:-1]])
        pair_of_pos = np.repeat(np.arange(n_pairs), tgt_len)  # (n_pos,) the pair of each target position
        n_pos = len(tgt_flat)
        per_pos = src_len[pair_of_pos]  # each target position links to every source piece of its pair
        pos = np.repeat(np.arange(n_pos, dtype=np.int32), per_pos)  # (n_links,)
        within = np.arange(n_links) - np.repeat(np.cumsum(per_pos) - per_pos, per_pos)
        src_ids = src_flat[np.repeat(src_start[pair_of_pos], per_pos) + within]  # (n_links,)
        tgt_ids = np.repeat(tgt_flat, per_pos)
        del within, pair_of_pos
        pairs, link_pair = np.unique(src_ids.astype(np.int64) * tgt_vocab + tgt_ids, return_inverse=True)  # distinct (s, t)
        del src_ids, tgt_ids
        link_pair = link_pair.astype(np.int32)
        pair_src, pair_tgt = pairs // tgt_vocab, pairs % tgt_vocab
        prob = np.ones(len(pairs))  # t(target | source), uniform to start
        for _ in range(iterations):
            p = prob[link_pair]
            posterior = p / np.bincount(pos, weights=p, minlength=n_pos)[pos]  # over each target position's links
            expected = np.bincount(link_pair, weights=posterior, minlength=len(pairs))
            prob = expected / np.bincount(pair_src, weights=expected, minlength=src_vocab + 1)[pair_src]
        real = pair_src < src_vocab
        pair_src, pair_tgt, prob = pair_src[real], pair_tgt[real], prob[real]
        ranked = np.lexsort((pair_tgt, -prob, pair_src))  # by source, then likeliest first, ties by id
        pair_src, pair_tgt = pair_src[ranked], pair_tgt[ranked]
        first = np.searchsorted(pair_src, pair_src, side="left")  # each entry's rank within its source
        rank = np.arange(len(pair_src)) - first
        keep = rank < width
        translations[pair_src[keep], rank[keep]] = pair_tgt[keep]
    info = {"pairs": int(n_pairs), "of_pairs": len(sources), "links": int(n_links), "iterations": iterations,
            "width": width, "model": "ibm1"}
    return LexicalTable(translations, frequent, info)


class Shortlist:
    """Each sentence's candidate target pieces: the ``frequent`` most frequent, and ``per_source`` per source piece."""

    def __init__(self, table: LexicalTable, per_source: int, frequent: int = 100) -> None:
        if per_source < 1 or frequent < 0:
            raise UsageError(f"a shortlist needs at least 1 piece per source piece and 0 or more frequent ones "
                             f"(got {per_source} and {frequent})")
        self.table = table
        self.per_source = min(per_source, table.translations.shape[1])
        self.common = table.frequent[:frequent][table.frequent[:frequent] >= SPECIALS].astype(np.int64)
        self.sentences = self.candidates = 0  # lists made so far and their total length (mean_size)

    def vocab(self, sources: Sequence[Sequence[int]]):
        """Source id lists -> (M, V') LongTensor of target ids: ids 0-3 first, then the sentence's candidates
        in id order, rows padded with PAD (0) to the longest."""
        import torch

        rows = []
        for src in sources:
            ids = np.asarray(src, dtype=np.int64)
            ids = ids[(ids >= 0) & (ids < len(self.table.translations))]
            candidates = self.table.translations[ids, : self.per_source].ravel().astype(np.int64)
            chosen = np.unique(np.concatenate([self.common, candidates[candidates >= SPECIALS]]))
            rows.append(np.concatenate([np.arange(SPECIALS), chosen]))
        self.sentences += len(rows)
        self.candidates += sum(map(len, rows))
        out = torch.zeros((len(rows), max(map(len, rows))), dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.from_numpy(r)
        return out

    @property
    def mean_size(self) -> float:
        """The mean length of the lists made so far (the 4 specials included); 0 before the first."""
        return self.candidates / self.sentences if self.sentences else 0.0


def publish_with_shortlist(registry, ref: str, src_path, tgt_path, *, name: str | None = None,
                           on_bad_utf8: str = "strict", command: str | None = None):
    """Build a lexical table for translation model ``ref`` from a parallel corpus (its training data, say) and
    publish the model with it as the next version of ``name`` (default: ``ref``'s name). The weights and
    metrics are unchanged; the parents name ``ref``. Returns the new Bundle."""
    from rnntool.kinds.catalog import SIDE_FILES
    from rnntool.kinds.translation.data import read_parallel
    from rnntool.tokenizers.sentencepiece import Tokenizer

    bundle = registry.load(ref, kind="translation")
    name = name or bundle.name
    if name is None:
        raise UsageError(f"{ref} is a bundle directory, not a registry model: give --name to publish under")
    model = (bundle.config or {}).get("model") or {}
    src_vocab, tgt_vocab = model.get("src_vocab_size"), model.get("tgt_vocab_size")
    if not (isinstance(src_vocab, int) and isinstance(tgt_vocab, int) and src_vocab > 0 and tgt_vocab > 0):
        raise CorruptBundle(f"{bundle.ref}: its manifest gives no vocabulary sizes; re-publish the model")
    src_lines, tgt_lines = read_parallel(src_path, tgt_path, on_bad_utf8=on_bad_utf8)
    if len(src_lines) > MAX_PAIRS:  # a seeded sample: tokenized pieces cost far more memory than the text
        keep = np.sort(np.random.default_rng(1).choice(len(src_lines), MAX_PAIRS, replace=False))
        src_lines, tgt_lines = [src_lines[i] for i in keep], [tgt_lines[i] for i in keep]
    src_tok, tgt_tok = (Tokenizer.load(bundle.file(SIDE_FILES[side])) for side in ("src", "tgt"))
    table = build_lexical_table(src_tok.encode_batch(src_lines), tgt_tok.encode_batch(tgt_lines), src_vocab, tgt_vocab)
    with registry.staging() as stage:
        bundle.copy_files(stage, skip=(SHORTLIST_FILE,))
        table.save(stage / SHORTLIST_FILE)
        parents = {"shortlisted": bundle.ref, **{k: v for k, v in bundle.parents.items() if "tokenizer" in k}}
        # the same model: its extra (the retrain key, so `train --if-changed` still sees it unchanged) goes along
        extra = {**(bundle.manifest.get("extra") or {}), "shortlist": table.info}
        return registry.publish(stage, name=name, kind="translation", config=bundle.config, metrics=bundle.metrics,
                                data=bundle.manifest.get("data"), parents=parents, extra=extra, command=command)


__all__ = ["SHORTLIST_FILE", "LexicalTable", "Shortlist", "build_lexical_table", "publish_with_shortlist"]

"""SentencePiece tokenizers with rnntool's fixed special ids.

Every model rnntool trains uses ``PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3``; model code relies
on them. The default normalization is the identity and extra whitespace is kept, so that
``decode(encode(text)) == text`` for any text (multiple spaces, tabs, unicode, empty lines) as long
as byte fallback is on (the default for bpe/unigram/char). Known SentencePiece limitation: a literal
``▁`` (U+2581) in the input is SentencePiece's own whitespace mark and decodes as a space.

Training lives in :mod:`rnntool.tokenizers.training`.

    tok = Tokenizer.load(Path("tokenizer.model"))
    tok.encode("Hello world")        # [ids...]
    tok.decode(tok.encode(s)) == s   # True

This module does not import torch.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rnntool.errors import BadInput, CorruptBundle, UsageError
from rnntool.kinds.catalog import CATALOG, SIDE_FILES, TOKENIZER_FILE, entry

if TYPE_CHECKING:  # pragma: no cover
    from rnntool.tokenizers.sampling import SubwordSampler

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3  # fixed in every model rnntool trains
SPECIAL_PIECES = ("<pad>", "<unk>", "<s>", "</s>")

MODEL_TYPES = ("bpe", "unigram", "char", "word")
NORMALIZATIONS = ("identity", "nfkc", "nmt_nfkc", "nfkc_cf", "nmt_nfkc_cf")
BYTE_PIECES = 256



def _sentencepiece():
    try:
        import sentencepiece
    except ImportError:  # pragma: no cover - a declared dependency
        from rnntool.errors import OptionalDependencyMissing

        raise OptionalDependencyMissing("sentencepiece is not installed; run 'pip install sentencepiece'") from None
    return sentencepiece


class Tokenizer:
    """A loaded SentencePiece model. ``path`` is its file, ``sha256`` the file's checksum."""

    def __init__(self, model_bytes: bytes, path: Path | None = None) -> None:
        spm = _sentencepiece()
        name = str(path) if path is not None else "<bytes>"
        try:
            self._sp = spm.SentencePieceProcessor(model_proto=model_bytes)
        except (RuntimeError, TypeError, ValueError):
            raise CorruptBundle(
                f"{name}: not a SentencePiece model (it cannot be parsed); "
                "train one with 'rnntool tokenize train'"
            ) from None
        self.path = Path(path) if path is not None else None
        self.sha256 = hashlib.sha256(model_bytes).hexdigest()
        self.vocab_size: int = self._sp.get_piece_size()
        self.train_stats: dict = {}  # set by train_tokenizer: line counts
        self.train_config: dict = {}  # set by train_tokenizer: every setting (for manifests)

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        """Load a ``.model`` file. Missing file: ``BadInput``; unparseable: ``CorruptBundle``."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise BadInput(f"{p}: no such tokenizer file") from None
        except IsADirectoryError:
            raise BadInput(f"{p}: is a directory, expected a SentencePiece .model file") from None
        except PermissionError:
            raise BadInput(f"{p}: permission denied") from None
        if not data:
            raise CorruptBundle(f"{p}: empty file, not a SentencePiece model")
        return cls(data, p)

    @classmethod
    def from_bundle(cls, bundle, side: str | None = None) -> "Tokenizer":
        """The tokenizer inside a bundle (a ``registry.Bundle`` or a bundle directory).

        ``tokenizer``/``lm`` bundles hold ``tokenizer.model``; ``translation`` bundles hold
        ``tokenizer.src.model`` and ``tokenizer.tgt.model``, chosen by ``side`` ("src"/"tgt").
        """
        if side is not None and side not in SIDE_FILES:
            raise UsageError(f"side must be 'src' or 'tgt', not {side!r}")
        root = Path(getattr(bundle, "path", bundle))
        ref = getattr(bundle, "ref", None) or str(root)
        kind = getattr(bundle, "kind", None)
        single = root / TOKENIZER_FILE
        two_sided = (kind in CATALOG and len(entry(kind).tokenizer_files) == 2) or (root / SIDE_FILES["src"]).exists()
        if two_sided and not (side is None and single.exists()):
            if side is None:
                raise UsageError(
                    f"{ref} is a translation model with two tokenizers; "
                    "choose one with --side src or --side tgt"
                )
            path = root / SIDE_FILES[side]
        else:
            path = single
        if not path.exists():
            raise CorruptBundle(f"{ref}: bundle has no {path.name}; it is incomplete (see 'rnntool models verify')")
        return cls.load(path)

    # -- info ------------------------------------------------------------------------------------
    @property
    def has_rnntool_ids(self) -> bool:
        """True when pad/unk/bos/eos are 0/1/2/3 (every tokenizer rnntool trains)."""
        sp = self._sp
        return (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID)

    def require_rnntool_ids(self) -> None:
        """Raise ``BadInput`` unless the special ids are rnntool's (models rely on them)."""
        if not self.has_rnntool_ids:
            sp = self._sp
            raise BadInput(
                f"{self.path or 'tokenizer'}: special ids are pad={sp.pad_id()} unk={sp.unk_id()} "
                f"bos={sp.bos_id()} eos={sp.eos_id()}, but rnntool models need 0/1/2/3; "
                "train the tokenizer with 'rnntool tokenize train'"
            )

    def __repr__(self) -> str:
        return f"Tokenizer(path={str(self.path)!r}, vocab_size={self.vocab_size}, sha256={self.sha256[:12]})"

    # -- encoding --------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self._sp.encode(text)

    def encode_batch(self, lines: Sequence[str]) -> list[list[int]]:
        return self._sp.encode(list(lines)) if lines else []

    def encode_pieces(self, text: str) -> list[str]:
        return self._sp.encode(text, out_type=str)

    def nbest_pieces(self, text: str, n: int) -> list[tuple[list[str], float]]:
        """The ``n`` most likely segmentations, best first, each with its score (the sum of its pieces'
        log-probabilities). Unigram tokenizers only (spm_encode --nbest_size)."""
        try:
            segmentations = self._sp.nbest_encode(text, nbest_size=n, out_type=str)
        except RuntimeError:
            raise UsageError("n-best segmentations need a unigram tokenizer (train one with --model-type "
                             "unigram); a bpe tokenizer can sample instead (--sample --alpha)") from None
        return [(pieces, sum(self._sp.get_score(self._sp.piece_to_id(p)) for p in pieces))
                for pieces in segmentations]

    @property
    def is_unigram(self) -> bool:
        """A unigram model (the only kind with n-best segmentations)."""
        try:
            self._sp.nbest_encode("a", nbest_size=2)
        except RuntimeError:
            return False
        return True

    def sampler(self, alpha: float, seed: int | None = None) -> "SubwordSampler":
        """Segmentations drawn at random (subword regularisation: l-best sampling with smoothing
        ``alpha`` for unigram, BPE-dropout at rate ``alpha`` for bpe), repeatable by ``seed`` in any
        process (rnntool/tokenizers/sampling.py)."""
        from rnntool.tokenizers.sampling import SubwordSampler

        return SubwordSampler(self, alpha, seed)

    def sample_batch(self, lines: Sequence[str], alpha: float, seed: int | None = None) -> list[list[int]]:
        """Ids of one segmentation drawn at random per line (see ``sampler``)."""
        return self.sampler(alpha, seed).sample_batch(lines)

    def pieces(self) -> list[str]:
        """Every piece, in id order."""
        return [self._sp.id_to_piece(i) for i in range(self.vocab_size)]

    def vocabulary(self) -> list[tuple[str, float]]:
        """Every piece with its score, in id order (spm_export_vocab)."""
        return [(self._sp.id_to_piece(i), float(self._sp.get_score(i))) for i in range(self.vocab_size)]

    # -- decoding --------------------------------------------------------------------------------
    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        ids = [int(i) for i in ids]
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise BadInput(
                    f"token id {i} is out of range: this tokenizer has {self.vocab_size} pieces "
                    f"(ids 0..{self.vocab_size - 1}); was the text encoded with another tokenizer?"
                )
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text for token ids; pad/bos/eos (control pieces) produce nothing."""
        ids = self._check_ids(ids)
        return self._sp.decode(ids) if ids else ""

    def decode_pieces(self, pieces: Sequence[str]) -> str:
        pieces = list(pieces)
        return self._sp.decode_pieces(pieces) if pieces else ""

    def id_to_piece(self, i: int) -> str:
        return self._sp.id_to_piece(self._check_ids([i])[0])

    def piece_to_id(self, piece: str) -> int:
        """The id of ``piece``; ``UNK_ID`` (the unk id) when it is not in the vocabulary."""
        return self._sp.piece_to_id(piece)


__all__ = [
    "BOS_ID",
    "EOS_ID",
    "MODEL_TYPES",
    "NORMALIZATIONS",
    "PAD_ID",
    "SIDE_FILES",
    "TOKENIZER_FILE",
    "Tokenizer",
    "UNK_ID",
]

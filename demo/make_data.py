"""Generate the demo's data: a small English corpus and an English→German parallel corpus.

    python demo/make_data.py OUT_DIR [--pairs 12000] [--seed 0]

Writes OUT_DIR/{train,valid,test}.{en,de}, OUT_DIR/lm.{train,valid}.txt and
OUT_DIR/clf.{train,valid,test}.tsv (the English side labelled with what the first verb acts on: an
animal, a person or a thing; a header row `label<TAB>sentence`) and OUT_DIR/tag.{train,valid,test}.conll
(the English side, a token per line, the subject and object of each clause as BIO spans SUBJ and OBJ). The sentences come
from a small grammar with a real (if tiny) German lexicon, so the translation needs agreement
(der/die/das, den/einen), compound adverbials and one reordering (a time adverb moves before the
object: "the cat sees the ball today" → "die Katze sieht heute den Ball"). Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

# (English, German nominative, German accusative)
NOUNS = [
    ("the cat", "die Katze", "die Katze"),
    ("the dog", "der Hund", "den Hund"),
    ("a man", "ein Mann", "einen Mann"),
    ("a woman", "eine Frau", "eine Frau"),
    ("the child", "das Kind", "das Kind"),
    ("the boy", "der Junge", "den Jungen"),
    ("the girl", "das Mädchen", "das Mädchen"),
    ("the teacher", "die Lehrerin", "die Lehrerin"),
    ("an old man", "ein alter Mann", "einen alten Mann"),
    ("a young woman", "eine junge Frau", "eine junge Frau"),
    ("the ball", "der Ball", "den Ball"),
    ("a red house", "ein rotes Haus", "ein rotes Haus"),
    ("the river", "der Fluss", "den Fluss"),
    ("a small bird", "ein kleiner Vogel", "einen kleinen Vogel"),
    ("the green tree", "der grüne Baum", "den grünen Baum"),
    ("the city", "die Stadt", "die Stadt"),
    ("a blue car", "ein blaues Auto", "ein blaues Auto"),
    ("the apple", "der Apfel", "den Apfel"),
    ("a white horse", "ein weißes Pferd", "ein weißes Pferd"),
    ("the big dog", "der große Hund", "den großen Hund"),
]
ANIMATE = NOUNS[:10] + [NOUNS[19]]
ANIMALS = {"the cat", "the dog", "a small bird", "a white horse", "the big dog"}
PEOPLE = {"a man", "a woman", "the child", "the boy", "the girl", "the teacher", "an old man", "a young woman"}
VERBS = [
    ("sees", "sieht"), ("likes", "mag"), ("finds", "findet"), ("paints", "malt"),
    ("watches", "beobachtet"), ("calls", "ruft"), ("buys", "kauft"), ("draws", "zeichnet"),
]
TIME = [("today", "heute"), ("again", "wieder"), ("in the morning", "am Morgen"),
        ("at night", "in der Nacht"), ("every day", "jeden Tag")]
PLACE = [("near the school", "in der Nähe der Schule"), ("in the park", "im Park"),
         ("on the street", "auf der Straße"), ("at the lake", "am See")]


def sentence(rng: random.Random) -> tuple[str, str]:
    s_en, s_de, _ = rng.choice(ANIMATE)
    v_en, v_de = rng.choice(VERBS)
    o_en, _, o_de = rng.choice(NOUNS)
    en = [s_en, v_en, o_en]
    de = [s_de, v_de]
    time = rng.choice(TIME) if rng.random() < 0.5 else None
    place = rng.choice(PLACE) if rng.random() < 0.4 else None
    if time:  # German puts the time adverb before the object
        de.append(time[1])
    de.append(o_de)
    if place:
        en.append(place[0])
        de.append(place[1])
    if time:
        en.append(time[0])
    if rng.random() < 0.25:  # coordination: "..., and the dog watches the city"
        s2_en, s2_de, _ = rng.choice(ANIMATE)
        v2_en, v2_de = rng.choice(VERBS)
        o2_en, _, o2_de = rng.choice(NOUNS)
        en.append(f", and {s2_en} {v2_en} {o2_en}")
        de.append(f", und {s2_de} {v2_de} {o2_de}")
    en_s = " ".join(en).replace(" ,", ",")
    de_s = " ".join(de).replace(" ,", ",")
    return en_s[0].upper() + en_s[1:] + ".", de_s[0].upper() + de_s[1:] + "."


def object_class(english: str) -> str:
    """What the first verb acts on in a generated English sentence: an animal, a person or a thing
    (the subject can be any of the first two, so the model has to find the object)."""
    words = english.lower().rstrip(".").replace(",", "").split()
    verbs = {en for en, _ in VERBS}
    rest = " ".join(words[next(i for i, w in enumerate(words) if w in verbs) + 1:])
    noun = max((n for n, _, _ in NOUNS if rest == n or rest.startswith(n + " ")), key=len)
    return "animal" if noun in ANIMALS else "person" if noun in PEOPLE else "thing"


def role_tags(english: str) -> list[tuple[str, str]]:
    """(token, tag) of a generated English sentence: each clause's subject and object as B-/I-SUBJ and
    B-/I-OBJ spans, everything else O."""
    tokens = english.rstrip(".").replace(",", " ,").split() + ["."]
    verbs = {en for en, _ in VERBS}
    nouns = sorted((n for n, _, _ in NOUNS), key=len, reverse=True)
    tags = ["O"] * len(tokens)
    role, i = "SUBJ", 0
    while i < len(tokens):
        rest = " ".join(tokens[i:]).lower()
        noun = next((n for n in nouns if rest == n or rest.startswith(n + " ")), None)
        if role is not None and noun is not None:
            width = len(noun.split())
            tags[i:i + width] = [f"B-{role}"] + [f"I-{role}"] * (width - 1)
            role = "OBJ" if role == "SUBJ" else None
            i += width
            continue
        if tokens[i] == "and":  # a second clause: its own subject and object
            role = "SUBJ"
        elif tokens[i] in verbs:
            role = "OBJ"
        i += 1
    return list(zip(tokens, tags))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--pairs", type=int, default=12000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    pairs = [sentence(rng) for _ in range(args.pairs)]
    n_valid = n_test = max(1, args.pairs // 40)
    splits = {
        "test": pairs[:n_test],
        "valid": pairs[n_test:n_test + n_valid],
        "train": pairs[n_test + n_valid:],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        for i, lang in enumerate(("en", "de")):
            (args.out / f"{split}.{lang}").write_text("".join(r[i] + "\n" for r in rows), encoding="utf-8")
    (args.out / "lm.train.txt").write_text("".join(r[0] + "\n" for r in splits["train"]), encoding="utf-8")
    (args.out / "lm.valid.txt").write_text("".join(r[0] + "\n" for r in splits["valid"]), encoding="utf-8")
    for split, rows in splits.items():
        lines = [f"{object_class(r[0])}\t{r[0]}\n" for r in rows[:3000]]
        (args.out / f"clf.{split}.tsv").write_text("label\tsentence\n" + "".join(lines), encoding="utf-8")
        blocks = ["".join(f"{token}\t{tag}\n" for token, tag in role_tags(r[0])) for r in rows[:2000]]
        (args.out / f"tag.{split}.conll").write_text("\n".join(blocks), encoding="utf-8")


if __name__ == "__main__":
    main()

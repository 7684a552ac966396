#!/usr/bin/env bash
# The demo pipeline, on data the project generates (demo/make_data.py): tokenize, train a language
# model, a text classifier started from it, a tagger and an English→German translator; score,
# generate, embed, classify, tag and translate. About 3½ minutes on 2 CPU cores (bench/RESULTS.md).
# Everything goes to demo-out/, with its own registry; running it again starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
out=demo-out
rm -rf "$out"
export RNNTOOL_HOME="$PWD/$out/registry"
d="$out/data"

run() { printf '\n$ %s\n' "$*" >&2; "$@"; }

run python demo/make_data.py "$d"
run rnntool tokenize train "$d/lm.train.txt" --name demo-spm --vocab-size 400 -q
printf 'The old man sees a small bird.\n' | run rnntool tokenize encode -m demo-spm

run rnntool train lm "$d/lm.train.txt" --valid "$d/lm.valid.txt" -t demo-spm --name demo-lm \
    --cell lstm --layers 1 --embed-dim 128 --hidden-dim 256 --batch-size 32 --bptt 32 \
    --max-time 60s --eval-every 200
run rnntool evaluate perplexity -m demo-lm "$d/lm.valid.txt"
run rnntool generate -m demo-lm --prompt "The cat" -n 3 --seed 1 --max-tokens 20

# what the verb acts on: an animal, a person or a thing (the language model's layers start the classifier)
run rnntool train classify "$d/clf.train.tsv" --valid "$d/clf.valid.tsv" --name demo-object \
    --init-from demo-lm --pooling max --epochs 3
printf 'The old man sees a small bird.\nThe dog likes the girl.\n' | run rnntool classify -m demo-object -k 2 --prob
run rnntool evaluate classification -m demo-object "$d/clf.test.tsv"

# vectors: sentences from the language model's states, its input embeddings as word vectors
printf 'The old man sees a small bird.\nThe dog likes the girl.\n' \
    | run rnntool embed -m demo-lm --pool mean --normalize | cut -c1-72
run rnntool models vectors demo-lm -o "$out/demo-lm.vec"
run rnntool neighbors -m "$out/demo-lm.vec" -k 3 ▁dog ▁sees

# subjects and objects as BIO spans (CoNLL in, CoNLL out: conlleval's input; a CRF output layer)
run rnntool train tag "$d/tag.train.conll" --valid "$d/tag.valid.conll" --name demo-roles \
    --crf --select span-f1 --layers 1 --epochs 2
printf 'The old man sees a small bird , and the dog likes the girl .\n' | run rnntool tag -m demo-roles --format lines
run rnntool tag -m demo-roles "$d/tag.test.conll" -o "$out/tag.test.conll"
run rnntool evaluate tags "$out/tag.test.conll"

run rnntool train translate --src "$d/train.en" --tgt "$d/train.de" \
    --valid-src "$d/valid.en" --valid-tgt "$d/valid.de" --name demo-en-de \
    --vocab-size 600 --joint-vocab --cell gru --layers 1 --embed-dim 128 --hidden-dim 256 \
    --attention general --batch-tokens 2000 --max-time 120s --eval-every 200
run rnntool models alias demo-en-de@1 prod
run rnntool translate -m demo-en-de@prod "$d/test.en" -o "$out/test.hyp.de"
head -3 "$d/test.en" "$out/test.hyp.de"
run rnntool evaluate bleu --ref "$d/test.de" "$out/test.hyp.de" --metrics bleu,chrf
run rnntool models list

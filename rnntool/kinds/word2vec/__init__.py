"""The word2vec kind: word vectors trained with gensim's CBOW or skip-gram with negative sampling
(`rnntool train word2vec`; rnntool/kinds/word2vec/train.py). Torch-free: the CLI reads its choices here."""

ALGORITHMS = ("skipgram", "cbow")
VECTORS_TENSOR = "vectors"  # the (V, D) matrix's name in the bundle's model.safetensors

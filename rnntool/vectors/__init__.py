"""Word and sentence vectors: files in and out (io.py), a model's input embedding table, pretrained
vectors as a model's start (pretrained.py), sentence vectors from a model's encoder (sentences.py), nearest neighbours (similarity.py).

    from rnntool.vectors.io import load_vectors, read_vectors, write_vectors
    vectors = load_vectors("news@prod")        # a model's input embedding table, or a vectors file
    write_vectors(vectors, "words.vec.gz")     # word2vec text, gzipped
"""

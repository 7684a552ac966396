"""The acceptor: text classification (`rnntool train classify`, `classify`, `evaluate classification`)."""

"""Metrics shared by the model kinds (the bootstrap: confidence intervals and paired significance tests)."""

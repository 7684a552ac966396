"""Shared toy setups for the tests: a toy training task (toy_training.py) and tiny LM bundles (lm_fixtures.py); conftest.py serves them as fixtures."""

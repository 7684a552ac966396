"""The model kinds, one folder each."""

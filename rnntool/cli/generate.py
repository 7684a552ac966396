"""`rnntool generate`."""

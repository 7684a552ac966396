"""`rnntool train lm`."""

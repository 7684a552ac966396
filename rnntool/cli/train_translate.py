"""`rnntool train translate`."""

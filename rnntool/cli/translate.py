"""`rnntool translate`."""

"""`rnntool models ...`: list, show, alias, rm, gc, path, verify, export, import."""

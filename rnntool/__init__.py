"""rnntool: recurrent language and translation models from the command line."""

__version__ = "0.1.0"

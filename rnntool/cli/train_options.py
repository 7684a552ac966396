"""Options and progress display shared by `train lm` and `train translate`."""

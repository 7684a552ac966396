"""The one training loop, its configuration, state and checkpoints, and the driver every kind shares."""

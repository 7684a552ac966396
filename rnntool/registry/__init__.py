"""The model registry: a plain directory of immutable, versioned bundles (torch-free)."""

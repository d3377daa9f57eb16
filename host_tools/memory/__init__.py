"""Memory of one training step: the arena layout (arena) and the patch-based first stage (patch)."""

"""Memory of one training step: the arena layout (arena), the patch-based first stage (patch), and
the blocks the layout treats as one: row-streamed, fused-backward, in-place (blocks)."""

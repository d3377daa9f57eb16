"""mcutrain host tools: convert models, run and check them on boards, plan sparse updates."""
__version__ = "0.1.0"

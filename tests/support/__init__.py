"""What the tests share with bench/ and fuzz/: random graphs, file edits, PyTorch graphs."""

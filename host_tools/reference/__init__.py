"""numpy reference of the C core, the oracle of the tests: forward and float backward (oracle), integer
backward (int_backward)."""

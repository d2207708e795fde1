"""Running a submission's own script safely: sandboxed subprocess, CPU shims, synthetic data, and the
gauntlet of stages that ends in the random-stream e-value test (see gauntlet.py)."""

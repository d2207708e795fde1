"""Reference implementation: challenge-format data, canonical BPB, a small GPT, trainer, evaluators,
normalized mixers (n-gram, tilt, PPM) and the C1-C4 conformance harness.

Device-agnostic torch: CPU here, CUDA where present.
"""

"""The one exception every CPU stand-in raises when only a GPU can do the work. The driver reports a
stage that ends in it as `needs GPU` rather than as a failure of the submission."""


class NeedsGPU(RuntimeError):
    pass

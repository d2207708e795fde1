"""CPU stand-in for `triton.tools.tensor_descriptor`: a script builds descriptors before launching its
kernel, so they must exist; the launch itself raises NeedsGPU (see the package's `_Kernel`)."""


class TensorDescriptor:
    def __init__(self, base=None, shape=None, strides=None, block_shape=None, *args, **kwargs):
        self.base, self.shape, self.strides, self.block_shape = base, shape, strides, block_shape

    @staticmethod
    def from_tensor(tensor, block_shape, *args, **kwargs):
        return TensorDescriptor(tensor, list(tensor.shape), list(tensor.stride()), list(block_shape))

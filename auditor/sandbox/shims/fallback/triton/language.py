"""Names used in kernel signatures and bodies; only their existence matters on CPU."""


class constexpr:  # used as an annotation at definition time
    def __init__(self, value=None):
        self.value = value


class _Dtype:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"tl.{self.name}"


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Dtype(name)

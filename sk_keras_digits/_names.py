"""The importable name of a class, for messages, keys and model files.

Backend-free, so that both the solvers and the model file use this one helper.
"""


def qualified_name(obj):
    """``module.QualName`` of ``obj``'s class (of ``obj`` itself if a class)."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"

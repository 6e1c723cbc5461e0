"""``wrap_non_picklable_objects``: make a function or class pickle by value, with cloudpickle.

zoblib's ``Parallel`` already sends every task with cloudpickle. The wrapper is for the other
places an object is pickled with the standard :mod:`pickle` (a ``multiprocessing`` pool or
queue of your own, ``concurrent.futures``, a file): a function defined in ``__main__`` or
inside another function, a lambda, or a class of an interactive session is carried by value
inside the wrapper's pickle, as joblib's (loky's) wrapper carries it.
"""

from __future__ import annotations

import inspect
from typing import Any

import cloudpickle

_OWN_ATTRIBUTES = ("_obj", "_keep_wrapper")


class CloudpickledObjectWrapper:
    """Stands for ``obj`` (attributes are read through), and pickles it with cloudpickle.

    Parameters
    ----------
    obj
        The wrapped object.
    keep_wrapper
        Whether unpickling gives the wrapper back (True) or the bare object (False).
    """

    def __init__(self, obj: Any, keep_wrapper: bool = False) -> None:
        self._obj = obj
        self._keep_wrapper = keep_wrapper

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        payload = cloudpickle.dumps(self._obj)
        if self._keep_wrapper:
            return _rewrap, (payload,)
        return cloudpickle.loads, (payload,)

    def __getattr__(self, name: str) -> Any:
        # Called only for attributes the wrapper lacks; its own two must not recurse (an
        # instance half-made by copy or pickle has neither yet).
        if name in _OWN_ATTRIBUTES:
            raise AttributeError(name)
        return getattr(self._obj, name)


class CallableObjectWrapper(CloudpickledObjectWrapper):
    """A :class:`CloudpickledObjectWrapper` of a callable; calling it calls the object."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._obj(*args, **kwargs)


def _wrap(obj: Any, keep_wrapper: bool) -> CloudpickledObjectWrapper:
    if callable(obj):
        return CallableObjectWrapper(obj, keep_wrapper)
    return CloudpickledObjectWrapper(obj, keep_wrapper)


def _rewrap(payload: bytes) -> CloudpickledObjectWrapper:
    """Unpickle a wrapper made with ``keep_wrapper=True``: the object, wrapped again."""
    return _wrap(cloudpickle.loads(payload), keep_wrapper=True)


def _wrap_class(cls: type, keep_wrapper: bool) -> type:
    """A class whose instances are instances of ``cls`` inside a wrapper."""
    instances_are_callable = any("__call__" in vars(klass) for klass in cls.__mro__ if klass is not object)
    base = CallableObjectWrapper if instances_are_callable else CloudpickledObjectWrapper

    def __init__(self: CloudpickledObjectWrapper, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, cls(*args, **kwargs), keep_wrapper)

    namespace = {"__init__": __init__, "__doc__": cls.__doc__, "__module__": cls.__module__}
    wrapper = type(cls.__name__, (base,), namespace)
    wrapper.__qualname__ = cls.__qualname__
    return wrapper


def wrap_non_picklable_objects(obj: Any, keep_wrapper: bool = True) -> Any:
    """Wrap a function, an object or a class so that the standard ``pickle`` sends it by value.

    joblib's ``wrap_non_picklable_objects`` (usable as a decorator). The object is pickled with
    cloudpickle, so functions and classes defined in ``__main__``, in another function, or as
    lambdas reach other processes. Pickling by value is slower than by reference: moving the
    code to an importable module is the better fix when it is possible.

    Parameters
    ----------
    obj
        A function or any object (wrapped as it is), or a class (the result is a class whose
        instances are wrapped instances of it).
    keep_wrapper
        True: the unpickled object is wrapped again (it pickles by value once more, say on its
        way back). False: unpickling gives the bare object.

    Returns
    -------
    object
        The wrapper: attributes are read from the wrapped object, and calling it calls the
        object. Unlike joblib's, instances of a wrapped class that defines ``__call__`` are
        callable before they are pickled too.

    Examples
    --------
    >>> import pickle
    >>> from zoblib import wrap_non_picklable_objects
    >>> def make_adder(n):
    ...     return wrap_non_picklable_objects(lambda x: x + n)
    >>> pickle.loads(pickle.dumps(make_adder(2)))(40)
    42
    """
    if inspect.isclass(obj):
        return _wrap_class(obj, keep_wrapper)
    return _wrap(obj, keep_wrapper)

"""The unpickler of joblib's files: a pickle whose array wrappers are replaced by arrays.

Made to be combined with a policy by inheritance (safe loading's allowlist)::

    class SafeJoblibUnpickler(JoblibUnpickler, GuardedUnpickler): ...

For that, its ``dispatch`` table calls every opcode's ``load_*`` method *by name*, so an
override in any class of the MRO (``load_build``, ``load_ext1``, ...) is the one that runs (a
mixin must override those methods, not edit a ``dispatch`` table of its own); ``find_class``
maps only joblib's wrapper classes and hands every other name to ``super().find_class``; and
the nested pickles of object arrays are read by an unpickler of the same class, made by
:meth:`JoblibUnpickler.nested`, so that a policy covers them too.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import IO, Any, ClassVar

from zoblib.joblib_format.arrays import JoblibReading, read_streamed_array
from zoblib.joblib_format.legacy import read_npy_file_array, read_zfile_array
from zoblib.joblib_format.wrappers import STAND_INS, WRAPPERS, NDArrayWrapper, NumpyArrayWrapper


def _calling(method_name: str) -> Callable[[Any], None]:
    def dispatch_by_name(unpickler: Any) -> None:
        getattr(unpickler, method_name)()

    dispatch_by_name.__name__ = method_name
    return dispatch_by_name


class JoblibUnpickler(pickle._Unpickler):
    """Unpickles a joblib file from ``file``, reading each array where its wrapper stands.

    Parameters
    ----------
    file
        The decompressed pickle stream, at its start.
    reading
        The file being read (its name, path, ``mmap_mode``, byte order handling).
    **options
        Passed on to the base classes (``pickle``'s ``encoding``, a policy's own options),
        and to the unpicklers of nested pickles.

    Examples
    --------
    >>> import io, pickle
    >>> from zoblib.joblib_format.arrays import JoblibReading
    >>> reading = JoblibReading("<memory>", path=None, mmap_mode=None, native_byte_order=True)
    >>> JoblibUnpickler(io.BytesIO(pickle.dumps({"a": 1})), reading).load()
    {'a': 1}
    """

    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = {
        code: _calling(method.__name__) for code, method in pickle._Unpickler.dispatch.items()
    }

    stack: list[Any]  # pickle._Unpickler's, set as it loads

    def __init__(self, file: IO[bytes], reading: JoblibReading, **options: Any) -> None:
        super().__init__(file, **options)
        self.stream = file
        self.reading = reading
        self.options = options

    def find_class(self, module: str, name: str) -> Any:
        """joblib's wrapper classes are data: their stand-ins, with no import of joblib."""
        stand_in = STAND_INS.get((module, name))
        if stand_in is not None:
            return stand_in
        return super().find_class(module, name)

    def load_build(self) -> None:
        """``BUILD``, then the array in place of a joblib wrapper just built."""
        super().load_build()  # type: ignore[misc]
        built = self.stack[-1]
        if type(built) in WRAPPERS:
            self.stack[-1] = self.read_array(built)

    def read_array(self, wrapper: Any) -> Any:
        """The array ``wrapper`` describes (read from the stream, or from a side file)."""
        if isinstance(wrapper, NumpyArrayWrapper):
            return read_streamed_array(wrapper, self.stream, self.reading, self.load_nested)
        self.reading.legacy = True
        if isinstance(wrapper, NDArrayWrapper):
            return read_npy_file_array(wrapper, self.reading, self.load_nested)
        return read_zfile_array(wrapper, self.reading)

    def nested(self, file: IO[bytes]) -> JoblibUnpickler:
        """An unpickler of this one's class and options, for a pickle nested in ``file``."""
        return type(self)(file, self.reading, **self.options)

    def load_nested(self, file: IO[bytes]) -> Any:
        """The object of the pickle that starts where ``file`` stands (an object array's)."""
        return self.nested(file).load()

"""``zoblib.hash``: joblib's ``hash`` with a fast default and archive-aware arrays."""

from __future__ import annotations

from zoblib.errors import HashingError
from zoblib.hashing.algorithms import DEFAULT_HASH_NAME, new_hash_object
from zoblib.hashing.pickler import canonical_digest


def hash(obj: object, hash_name: str = DEFAULT_HASH_NAME, coerce_mmap: bool = False) -> str:
    """Compute a hash of a Python object, fast on numpy arrays.

    The same object gives the same hash in every process and every run, whatever
    ``PYTHONHASHSEED``, on every platform of the same endianness and the same Python and
    numpy versions.

    - Dicts and sets hash independently of their order, also with keys of mixed, unorderable
      types; lists and tuples keep order; ``1``, ``1.0`` and ``True`` hash differently.
      ``OrderedDict`` keeps its order, as its ``==`` does.
    - Objects are compared by value: two equal objects hash alike whether or not they are one
      object. Self-referencing objects can be hashed, with shared parts written as references.
    - A numpy array hashes from its dtype (with byte order), its shape and
      :func:`~zoblib.hashing.array_digest` of its values in C order, read from memory without
      copying it whole. So an array, its Fortran-ordered or strided counterpart with the same
      values and a ``np.memmap`` of them hash alike; an array and its transpose, or the same
      bytes under another dtype or shape, do not. Padding bytes in structured dtypes are left
      out. Other ndarray subclasses add their class (masked arrays also their mask and fill
      value). Arrays of Python objects hash element by element.
    - An array loaded read-only from a zoblib archive (a ``np.memmap`` with ``mmap_mode='r'`` or
      a lazy array) carries the digest ``dump`` recorded as ``zoblib_digest``; when it was made
      with ``hash_name``, it stands for the data, which is then not read at all.
    - Functions hash by their code (bytecode, constants, names), defaults and closure, so
      editing one changes its hash; line numbers and the file do not count. Classes hash by
      qualified name.

    Parameters
    ----------
    obj : object
        Any object that can be pickled (functions and local classes need not be importable).
    hash_name : {'xxh3_128', 'xxh3_64', 'md5', 'sha1', 'sha256'}, default 'xxh3_128'
        The algorithm. Unlike joblib (``'md5'``), the default is xxhash's XXH3, which runs at
        memory speed; recorded array digests are XXH3-128, so other names read array data.
    coerce_mmap : bool, default False
        Accepted for compatibility with joblib, without effect: a ``np.memmap`` always hashes
        as the ndarray with the same content.

    Returns
    -------
    str
        The hexadecimal digest (32 characters for ``'xxh3_128'`` and ``'md5'``).

    Raises
    ------
    ValueError
        If ``hash_name`` is unknown; the message lists the known names.
    HashingError
        If ``obj`` or something in it cannot be pickled (a lock, a generator, a socket); the
        message names its type. Also a ``TypeError``.

    Examples
    --------
    >>> import numpy as np
    >>> hash({"a": 1, "b": 2}) == hash({"b": 2, "a": 1})
    True
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> hash(a) == hash(np.asfortranarray(a)), hash(a) == hash(a.T)
    (True, False)
    >>> len(hash([1, 2, 3], hash_name="sha256"))
    64
    """
    del coerce_mmap  # memmaps and arrays always hash alike (see above)
    new_hash_object(hash_name)  # an unknown name fails here, before any work
    try:
        try:
            return canonical_digest(obj, hash_name)
        except (RecursionError, ValueError) as exc:
            if isinstance(exc, ValueError) and not str(exc).startswith("fast mode"):
                raise
            # The pickler's fast mode has no memo and so cannot follow a self-referencing object
            # (it raises ValueError, or recurses until RecursionError): hash it again, this time
            # writing objects met twice as back-references.
            return canonical_digest(obj, hash_name, track_identity=True)
    except RecursionError as exc:
        raise HashingError(
            f"cannot hash an object of type {type(obj).__qualname__}: it is nested too deeply"
        ) from exc

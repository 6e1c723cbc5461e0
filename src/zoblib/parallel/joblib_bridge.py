"""Route joblib's own ``Parallel`` (scikit-learn's, for one) through zoblib's workers.

scikit-learn imports joblib itself, so ``zoblib.parallel_config`` cannot reach
``GridSearchCV(n_jobs=2)``. joblib's backend API can: :func:`register_joblib_backend` registers
a joblib backend named ``"zoblib"``, and inside ``joblib.parallel_config(backend="zoblib")``
joblib hands every batch to zoblib's workers (see :mod:`zoblib.parallel.joblib_backend`).

Registration is explicit, not done on ``import zoblib``: importing joblib costs a few hundred
milliseconds that zoblib users without joblib-based libraries should not pay, and registering
only when joblib happens to be imported first would make the backend's presence depend on
import order.
"""

from __future__ import annotations

#: The name the backend is registered under by default.
JOBLIB_BACKEND_NAME = "zoblib"


def register_joblib_backend(name: str = JOBLIB_BACKEND_NAME, make_default: bool = False) -> None:
    """Register zoblib's workers as a joblib parallel backend.

    After it, ``with joblib.parallel_config(backend="zoblib", n_jobs=2):`` runs the tasks of
    every joblib ``Parallel`` call in the block (scikit-learn's ``GridSearchCV``,
    ``cross_val_score``...) in zoblib's worker processes: big numpy arrays travel as
    memory-mapped files, and errors carry zoblib's messages (the worker's traceback, a
    :class:`~zoblib.WorkerDiedError` naming the signal). Options of the block go to the zoblib
    backend: ``zoblib_backend`` (``'loky'``, the default, ``'multiprocessing'``, or a cluster's:
    ``'dask'``, ``'ray'``) and that backend's own (``initializer``, ``initargs``...).

    Parameters
    ----------
    name
        The joblib backend name.
    make_default
        Make it joblib's default backend, for joblib calls outside any block too.

    Raises
    ------
    ImportError
        If joblib is not installed.

    Examples
    --------
    >>> import joblib
    >>> import zoblib
    >>> zoblib.register_joblib_backend()
    >>> with joblib.parallel_config(backend="zoblib", n_jobs=2):
    ...     joblib.Parallel()(joblib.delayed(abs)(-i) for i in range(3))
    [0, 1, 2]
    """
    try:
        import joblib
    except ImportError as exc:
        raise ImportError(
            "register_joblib_backend needs joblib: pip install joblib (zoblib's own Parallel does not)"
        ) from exc
    from zoblib.parallel.joblib_backend import ZoblibJoblibBackend

    joblib.register_parallel_backend(name, ZoblibJoblibBackend, make_default=make_default)

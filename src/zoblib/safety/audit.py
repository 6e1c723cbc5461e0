"""``zoblib.audit``: the globals an archive's skeleton needs, and which are outside the allowlist."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, Any

from zoblib.safety.policy import Policy, Trusted
from zoblib.safety.scan import ScanResult, scan_globals


@dataclass(frozen=True)
class AuditReport:
    """What :func:`audit` found in one archive.

    Attributes
    ----------
    path
        The archive audited.
    globals
        Every ``"module.QualName"`` the skeleton names, sorted and deduplicated (names that
        cannot be known without executing the pickle appear as ``"<...>"`` pseudo-names).
    untrusted
        Those outside the allowlist and ``trusted``: ``load(..., safe=True)`` refuses them.
    """

    path: str
    globals: tuple[str, ...]
    untrusted: tuple[str, ...]

    @property
    def safe(self) -> bool:
        """Whether ``load(path, safe=True)`` (with the same ``trusted``) accepts the skeleton."""
        return not self.untrusted

    def allow_call(self) -> str:
        """The exact call that loads the archive with its untrusted globals allowed."""
        return allow_call(self.path, self.untrusted)


def allow_call(path: str, untrusted: tuple[str, ...]) -> str:
    """``zoblib.load(...)`` with ``trusted=`` listing ``untrusted``, for messages and reports.

    Pseudo-names (``"<...>"``) cannot be allowed by name: the call is then ``safe=False``.

    Parameters
    ----------
    path
        The archive, as the call should name it.
    untrusted
        The globals to allow, ``"module.QualName"`` (or pseudo-names).

    Returns
    -------
    str
        The call, as Python source.

    Examples
    --------
    >>> from zoblib.safety import allow_call
    >>> allow_call("m.zob", ("builtins.print",))
    "zoblib.load('m.zob', safe=True, trusted=['builtins.print'])"
    >>> allow_call("m.zob", ("<STACK_GLOBAL of computed names at byte 9>",))
    "zoblib.load('m.zob', safe=False)"
    """
    if any(name.startswith("<") for name in untrusted):
        return f"zoblib.load({path!r}, safe=False)"
    if not untrusted:
        return f"zoblib.load({path!r}, safe=True)"
    return f"zoblib.load({path!r}, safe=True, trusted={list(untrusted)!r})"


def untrusted_globals(scan: ScanResult, policy: Policy) -> tuple[str, ...]:
    """The names of ``scan`` that ``policy`` does not allow, sorted.

    Exact allowlist entries and trusted names are decided by name; only a rule's family
    (scikit-learn classes, ...) is resolved, importing modules of the rule's own package.
    """
    refused = {
        f"{module}.{qualname}"
        for module, qualname in scan.named
        if not policy.allows_without_import(module, qualname) and not policy.allows(module, qualname)
    }
    return tuple(sorted(refused | set(scan.unnamed)))


def report_of(path: str, data: bytes, policy: Policy) -> AuditReport:
    """The :class:`AuditReport` of one skeleton's bytes, scanned without executing them.

    Parameters
    ----------
    path
        The archive the skeleton comes from (named in the report).
    data
        The skeleton: a pickle.
    policy
        What is allowed.

    Returns
    -------
    AuditReport
        Every global named, and those ``policy`` does not allow.

    Raises
    ------
    ValueError
        If ``data`` is not a well-formed pickle.

    Examples
    --------
    >>> import pickle, collections
    >>> from zoblib.safety import Policy, report_of
    >>> report = report_of("m.zob", pickle.dumps([collections.OrderedDict(), print]), Policy())
    >>> report.globals, report.untrusted
    (('builtins.print', 'collections.OrderedDict'), ('builtins.print',))
    """
    scan = scan_globals(data)
    names = {f"{module}.{qualname}" for module, qualname in scan.named} | set(scan.unnamed)
    return AuditReport(path, tuple(sorted(names)), untrusted_globals(scan, policy))


def audit(filename: str | os.PathLike[str] | IO[bytes], *, trusted: Trusted = ()) -> AuditReport:
    """List the globals an archive's skeleton needs, without executing anything.

    Parameters
    ----------
    filename
        The archive (any container :func:`~zoblib.load` reads), or an open binary file.
    trusted
        Extra globals to count as allowed, as for ``load(..., safe=True, trusted=...)``:
        ``"module.QualName"`` strings or the objects themselves.

    Returns
    -------
    AuditReport
        Every global named, those outside the allowlist, and the call that would allow them.

    Raises
    ------
    ArchiveError
        If ``filename`` is not a readable zoblib archive, or its skeleton is not a valid pickle
        (:class:`~zoblib.ArchiveCorruptedError`).

    Examples
    --------
    >>> import os, tempfile, collections, zoblib
    >>> path = os.path.join(tempfile.mkdtemp(), "d.pkl")
    >>> _ = zoblib.dump(collections.OrderedDict(a=print), path)
    >>> report = zoblib.audit(path)
    >>> report.globals, report.untrusted, report.safe
    (('builtins.print', 'collections.OrderedDict'), ('builtins.print',), False)
    >>> report.allow_call() == f"zoblib.load({path!r}, safe=True, trusted=['builtins.print'])"
    True
    """
    # Imported here: the archive reader imports the skeleton module, which imports this package.
    from zoblib.archive.containers import open_reader
    from zoblib.archive.guard import reading
    from zoblib.archive.reader import ArchiveReader
    from zoblib.errors import ArchiveCorruptedError

    source: Any = os.fspath(filename) if isinstance(filename, (str, os.PathLike)) else filename
    path = source if isinstance(source, str) else str(getattr(source, "name", "<file object>"))
    with reading(path):
        container = open_reader(source)
        try:
            reader = ArchiveReader(container)
            data = reader.read_whole(reader.skeleton).tobytes()
        finally:
            container.close()
    try:
        return report_of(path, data, Policy(trusted))
    except ValueError as exc:
        raise ArchiveCorruptedError(path, f"the pickle skeleton is damaged: {exc}") from exc

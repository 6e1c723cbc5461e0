"""Write the crafted archives of ``tests/attacks/files/``: one per known unpickling gadget.

Each archive is a valid zoblib archive whose pickle skeleton is hand-assembled from opcodes.
Its payload, when the skeleton runs unchecked (``zoblib.load(path)``, the default), creates a
marker file named ``marker-<gadget>`` in the working directory (or, for the two memory
gadgets, crashes the interpreter). ``load(path, safe=True)`` must refuse every one of them
and leave no marker. ``GADGETS`` below says what each one tries.

Run from the repository root: ``.venv/bin/python tests/attacks/make_attacks.py``.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
#: The module the ``import_side_effect`` gadget names; the test puts it on ``sys.path``.
SIDE_EFFECT_MODULE = "zoblib_attack_side_effect"


# ---- a tiny pickle assembler (protocol 4 opcodes) ---------------------------------------------


def text(value: str) -> bytes:
    raw = value.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw


def raw_bytes(value: bytes) -> bytes:
    return pickle.BINBYTES + struct.pack("<I", len(value)) + value


def name(module: str, qualname: str) -> bytes:
    return text(module) + text(qualname) + pickle.STACK_GLOBAL


def call(func: bytes, *args: bytes) -> bytes:
    return func + pickle.MARK + b"".join(args) + pickle.TUPLE + pickle.REDUCE


def program(*parts: bytes) -> bytes:
    return pickle.PROTO + b"\x04" + b"".join(parts) + pickle.STOP


def make_marker_code(gadget: str) -> str:
    return f"open('marker-{gadget}', 'w').close()"


def touch(gadget: str) -> bytes:
    return text(f"touch marker-{gadget}")


def getattr_of(obj: bytes, attribute: str) -> bytes:
    return call(name("builtins", "getattr"), obj, text(attribute))


def nested_payload(gadget: str) -> bytes:
    """A whole pickle that runs ``os.system`` (what a trampoline loader is fed)."""
    return program(call(name("os", "system"), touch(gadget)))


def npy_with_object_payload(gadget: str) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": "|O", "fortran_order": False, "shape": (1,)}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + pickle.dumps([_Gadget(gadget)], protocol=2)


class _Gadget:
    def __init__(self, gadget: str) -> None:
        self.gadget = gadget

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (f"touch marker-{self.gadget}",))


# ---- the gadgets ------------------------------------------------------------------------------


def _eval(g: str) -> bytes:
    return program(call(name("builtins", "eval"), text(make_marker_code(g))))


def _exec(g: str) -> bytes:
    return program(call(name("builtins", "exec"), text(make_marker_code(g))))


def _compile(g: str) -> bytes:
    code = call(name("builtins", "compile"), text(make_marker_code(g)), text("<attack>"), text("exec"))
    return program(call(name("builtins", "eval"), code))


def _open(g: str) -> bytes:
    return program(call(name("builtins", "open"), text(f"marker-{g}"), text("w")))


def _getattr(g: str) -> bytes:
    # An allowed function's __globals__ hold the pickle module: getattr is enough to reach it.
    module_globals = getattr_of(name("zoblib.archive.skeleton", "rebuild_array"), "__globals__")
    pickle_module = call(getattr_of(module_globals, "get"), text("pickle"))
    return program(call(getattr_of(pickle_module, "loads"), raw_bytes(nested_payload(g))))


def _getattr_class_attribute(g: str) -> bytes:
    # getattr(<allowed class>, '<attribute>') is how pickle names class methods; only a few
    # are allowed. DataFrame.to_pickle writes a file.
    to_pickle = call(name("builtins", "getattr"), name("pandas", "DataFrame"), text("to_pickle"))
    return program(call(to_pickle, call(name("pandas", "DataFrame")), text(f"marker-{g}")))


def _import(g: str) -> bytes:
    os_module = call(name("builtins", "__import__"), text("os"))
    return program(call(getattr_of(os_module, "system"), touch(g)))


def _os_system(g: str) -> bytes:
    return program(call(name("os", "system"), touch(g)))


def _posix_system(g: str) -> bytes:
    return program(call(name("posix", "system"), touch(g)))


def _subprocess(g: str) -> bytes:
    argv = pickle.MARK + text("touch") + text(f"marker-{g}") + pickle.LIST
    return program(call(name("subprocess", "run"), argv))


def _sys_modules(g: str) -> bytes:
    # A dotted name through a module attribute: collections._sys is the sys module.
    os_module = call(name("collections", "_sys.modules.get"), text("os"))
    return program(call(getattr_of(os_module, "system"), touch(g)))


def _module_attribute(g: str) -> bytes:
    # An allowed module's attribute is another module: zoblib.archive.skeleton imports pickle.
    return program(call(name("zoblib.archive.skeleton", "pickle.loads"), raw_bytes(nested_payload(g))))


def _sklearn_module_attribute(g: str) -> bytes:
    # The same through a module a rule covers (scikit-learn classes): sklearn.base imports
    # numpy as np, whose testing helpers exec strings.
    runstring = name("sklearn.base", "np.testing._private.utils.runstring")
    return program(call(runstring, text(make_marker_code(g)), pickle.EMPTY_DICT))


def _attrgetter(g: str) -> bytes:
    # attrgetter/methodcaller walk from an allowed function to pickle.loads, like getattr.
    module_globals = call(
        call(name("operator", "attrgetter"), text("__globals__")),
        name("zoblib.archive.skeleton", "rebuild_array"),
    )
    pickle_module = call(call(name("operator", "methodcaller"), text("get"), text("pickle")), module_globals)
    loads = call(call(name("operator", "attrgetter"), text("loads")), pickle_module)
    return program(call(loads, raw_bytes(nested_payload(g))))


def _methodcaller(g: str) -> bytes:
    os_module = call(name("importlib", "import_module"), text("os"))
    return program(call(call(name("operator", "methodcaller"), text("system"), touch(g)), os_module))


def _pkgutil(g: str) -> bytes:
    return program(call(call(name("pkgutil", "resolve_name"), text("os:system")), touch(g)))


def _importlib(g: str) -> bytes:
    os_module = call(name("importlib", "import_module"), text("os"))
    return program(call(getattr_of(os_module, "system"), touch(g)))


def _numpy_testing(g: str) -> bytes:
    runstring = name("numpy.testing._private.utils", "runstring")
    return program(call(runstring, text(make_marker_code(g)), pickle.EMPTY_DICT))


def _joblib_load(g: str) -> bytes:
    stream = call(name("_io", "BytesIO"), raw_bytes(nested_payload(g)))
    return program(call(name("joblib.numpy_pickle", "load"), stream))


def _pickle_loads(g: str) -> bytes:
    return program(call(name("pickle", "loads"), raw_bytes(nested_payload(g))))


def _numpy_load(g: str) -> bytes:
    # A pickled payload inside an .npy object array, fed to numpy's loader.
    stream = call(name("_io", "BytesIO"), raw_bytes(npy_with_object_payload(g)))
    return program(call(name("numpy", "load"), stream, pickle.NONE, pickle.NEWTRUE))


def _object_array(g: str) -> bytes:
    # numpy's own pickling of an object array: its elements are pickled in the same stream.
    return pickle.dumps(np.array([_Gadget(g), 1], dtype=object), protocol=4)


def _stack_global_computed(g: str) -> bytes:
    # Names computed by an allowed call (str(b'os', 'ascii')), so no scan sees them as text.
    module = call(name("builtins", "str"), raw_bytes(b"os"), text("ascii"))
    qualname = call(name("builtins", "str"), raw_bytes(b"system"), text("ascii"))
    return program(call(module + qualname + pickle.STACK_GLOBAL, touch(g)))


def _python2_names(g: str) -> bytes:
    # Protocol 0 and Python 2's module name: pickle maps __builtin__ to builtins.
    source = make_marker_code(g)
    return b"c__builtin__\neval\n(V" + source.encode("raw_unicode_escape") + b"\ntR."


def _inst_opcode(g: str) -> bytes:
    # INST names and calls the class in one opcode (protocol 0).
    return b"(V" + f"touch marker-{g}".encode() + b"\nios\nsystem\n."


def _ext_opcode(g: str) -> bytes:
    # EXT1: a global by its number in copyreg's extension registry (the test registers
    # EXTENSION_CODE -> os.system, as an application could have).
    return program(
        pickle.EXT1 + bytes([EXTENSION_CODE]) + pickle.MARK + touch(g) + pickle.TUPLE + pickle.REDUCE
    )


def _ext_unregistered(g: str) -> bytes:
    return program(
        pickle.EXT2 + struct.pack("<H", 0x7FF0) + pickle.MARK + touch(g) + pickle.TUPLE + pickle.REDUCE
    )


def _build_class_setstate(g: str) -> bytes:
    # BUILD on an allowed class sets its __setstate__ to exec for the whole process; the next
    # BUILD on an instance then runs a string.
    base = name("fractions", "Fraction")
    patch = base + pickle.MARK + pickle.NONE + pickle.EMPTY_DICT + text("__setstate__")
    patch += name("builtins", "exec") + pickle.SETITEM + pickle.TUPLE + pickle.BUILD + pickle.POP
    instance = name("fractions", "Fraction") + pickle.EMPTY_TUPLE + pickle.NEWOBJ
    return program(patch + instance + text(make_marker_code(g)) + pickle.BUILD)


def _build_function_defaults(g: str) -> bytes:
    # BUILD on an allowed function replaces its defaults (or its __code__) process-wide; the
    # payload then calls the patched function with exec among its arguments.
    target = name("numpy.random._pickle", "__generator_ctor")
    state = pickle.MARK + pickle.NONE + pickle.EMPTY_DICT + text("__defaults__")
    state += pickle.MARK + text(make_marker_code(g)) + name("builtins", "exec") + pickle.TUPLE
    state += pickle.SETITEM + pickle.TUPLE
    patched = target + state + pickle.BUILD
    return program(call(patched))


def _object_array_over_bytes() -> tuple[bytes, ...]:
    """``ndarray.__new__``'s arguments for a one-item object array whose pointer is 8 bytes of 0x41."""
    return (pickle.MARK + pickle.BININT1 + b"\x01" + pickle.TUPLE, text("O"), raw_bytes(b"\x41" * 8))


def _ndarray_buffer(g: str) -> bytes:
    # Calling numpy.ndarray with an object dtype over bytes: the bytes become object pointers.
    del g
    return program(call(name("numpy", "ndarray"), *_object_array_over_bytes()))


def _newobj_ndarray(g: str) -> bytes:
    # The same through copyreg.__newobj__, an allowed helper that calls cls.__new__.
    del g
    return program(call(name("copyreg", "__newobj__"), name("numpy", "ndarray"), *_object_array_over_bytes()))


def _import_side_effect(g: str) -> bytes:
    # Importing a module runs it: the name is refused without importing its module.
    del g
    return program(call(name(SIDE_EFFECT_MODULE, "anything")))


def _random_trampoline(g: str) -> bytes:
    # numpy's __generator_ctor calls its second argument: an allowed trampoline.
    return program(call(name("numpy.random._pickle", "__generator_ctor"), touch(g), name("os", "system")))


EXTENSION_CODE = 0xF1

#: gadget -> (assembler, what it shows; "crash" for the gadgets that crash instead of writing).
GADGETS: dict[str, tuple[Callable[[str], bytes], str]] = {
    "builtins_eval": (_eval, "builtins.eval of a string"),
    "builtins_exec": (_exec, "builtins.exec of a string"),
    "builtins_compile": (_compile, "builtins.compile, then eval of the code object"),
    "builtins_open": (_open, "builtins.open creating a file"),
    "builtins_getattr": (_getattr, "getattr from an allowed function's __globals__ to pickle.loads"),
    "getattr_class_attribute": (_getattr_class_attribute, "getattr(pandas.DataFrame, 'to_pickle')"),
    "builtins_import": (_import, "builtins.__import__('os') and getattr"),
    "os_system": (_os_system, "os.system"),
    "posix_system": (_posix_system, "posix.system (what pickle names os.system as on Linux)"),
    "subprocess_run": (_subprocess, "subprocess.run"),
    "sys_modules": (_sys_modules, "collections._sys.modules.get: a dotted name reaching sys.modules"),
    "module_attribute": (_module_attribute, "zoblib.archive.skeleton + pickle.loads: through a module"),
    "rule_module_attribute": (_sklearn_module_attribute, "sklearn.base + np.testing...: through a module"),
    "operator_attrgetter": (_attrgetter, "operator.attrgetter"),
    "operator_methodcaller": (_methodcaller, "operator.methodcaller"),
    "pkgutil_resolve_name": (_pkgutil, "pkgutil.resolve_name('os:system')"),
    "importlib_import_module": (_importlib, "importlib.import_module"),
    "numpy_testing_runstring": (_numpy_testing, "numpy.testing's runstring (exec)"),
    "joblib_load_trampoline": (_joblib_load, "joblib.load fed a nested pickle"),
    "pickle_loads_trampoline": (_pickle_loads, "pickle.loads fed a nested pickle"),
    "numpy_load_trampoline": (_numpy_load, "numpy.load(allow_pickle=True) of an object .npy"),
    "object_array_elements": (_object_array, "an object array whose element is a gadget"),
    "stack_global_computed": (_stack_global_computed, "STACK_GLOBAL of names computed by str()"),
    "python2_names": (_python2_names, "protocol 0 with __builtin__.eval (mapped by fix_imports)"),
    "inst_opcode": (_inst_opcode, "INST os system (protocol 0)"),
    "ext_opcode": (_ext_opcode, "EXT1 of a registered extension code mapped to os.system"),
    "ext_unregistered": (_ext_unregistered, "EXT2 of a code the registry does not know"),
    "build_class_setstate": (_build_class_setstate, "BUILD setting __setstate__ on an allowed class"),
    "build_function_defaults": (
        _build_function_defaults,
        "BUILD setting __defaults__ on an allowed function",
    ),
    "random_trampoline": (_random_trampoline, "numpy's __generator_ctor calling os.system"),
    "ndarray_buffer": (_ndarray_buffer, "crash: numpy.ndarray(shape, 'O', bytes)"),
    "newobj_ndarray": (_newobj_ndarray, "crash: copyreg.__newobj__(numpy.ndarray, ...)"),
    "import_side_effect": (_import_side_effect, "a module that runs code when imported"),
}


def write_archive_with_skeleton(path: Path, skeleton: bytes) -> None:
    """A zoblib archive (ZIP) whose skeleton is ``skeleton``, with zoblib's own writer."""
    import zoblib
    import zoblib.archive.writer as writer

    original = writer.dumps_skeleton
    writer.dumps_skeleton = lambda *args: (skeleton, "pickle")  # type: ignore[assignment]
    try:
        zoblib.dump(None, str(path))
    finally:
        writer.dumps_skeleton = original


def write_object_dtype_node(path: Path) -> None:
    """An archive whose array node claims an object dtype (memory-mapped as pointers)."""
    import zoblib
    from zoblib.archive.integrity import RECORD_CHECKSUM_ATTRIBUTE, record_checksum

    folder = path.with_suffix(".zarr")
    shutil.rmtree(folder, ignore_errors=True)
    zoblib.dump({"x": np.full(9_000, 0x41, dtype=np.int64)}, str(folder))
    metadata = json.loads((folder / "zarr.json").read_text())
    record = metadata["attributes"]["zoblib"]
    for node_path, node in record["nodes"].items():
        if node_path != "skeleton":
            node["dtype"] = "|O"
    metadata["attributes"][RECORD_CHECKSUM_ATTRIBUTE] = record_checksum(record)
    (folder / "zarr.json").write_text(json.dumps(metadata))


def main() -> None:
    FILES.mkdir(exist_ok=True)
    for gadget, (assemble, _) in GADGETS.items():
        write_archive_with_skeleton(FILES / f"{gadget}.zip", assemble(gadget))
    write_object_dtype_node(FILES / "object_dtype_node")
    print(f"wrote {len(GADGETS) + 1} attack archives in {FILES}", file=sys.stderr)


if __name__ == "__main__":
    main()

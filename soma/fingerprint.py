"""Canonical, NaN-safe content hashing and code fingerprints.

``hash_value(obj)`` gives the same hex SHA-256 for equal content, whatever the dict order,
and different hashes for values that differ in any bit: floats are hashed by their bit
pattern (so NaN, +inf, -inf, 0.0 and -0.0 are all distinct), numpy arrays by dtype, shape
and bytes, and every value carries a type tag (``1``, ``1.0``, ``True`` and ``"1"`` differ).

>>> from soma.fingerprint import hash_value
>>> hash_value({"a": 1, "b": 2}) == hash_value({"b": 2, "a": 1})
True
>>> len({hash_value(float("nan")), hash_value(float("inf")), hash_value(float("-inf"))})
3

``filter_fingerprint(f)`` identifies a filter's behaviour: its class (module and qualified
name), its normalized source code over the class hierarchy (comments, docstrings and
formatting do not count; code does), what that code uses from its own module (helper
functions and classes, by normalized source; constants, by value), the values its methods
close over, and its parameters. ``graph_fingerprint(g)`` combines
every node's fingerprint with the graph's edges and control structure.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import struct
import sys
import textwrap
import threading
import types
import weakref
from typing import TYPE_CHECKING, Any

from soma._pyast import AST_LOCK
from soma._pyast import parse as parse_python

if TYPE_CHECKING:
    from soma.graph import Graph

__all__ = [
    "callable_fingerprint",
    "class_fingerprint",
    "combine",
    "filter_fingerprint",
    "graph_fingerprint",
    "hash_value",
]

_PACK_DOUBLE = struct.Struct("<d").pack
_PACK_LEN = struct.Struct("<Q").pack


def hash_value(obj: Any) -> str:
    """Canonical content hash of ``obj`` (hex SHA-256)."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def combine(*parts: str) -> str:
    """Hash of several already-computed hex keys or tags, in order (Merkle step)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _feed(h: Any, obj: Any) -> None:
    # Exact type checks first: they are the common case and cheaper than isinstance chains.
    t = type(obj)
    if obj is None:
        h.update(b"N")
    elif t is bool:
        h.update(b"T" if obj else b"F")
    elif t is int:
        data = str(obj).encode()
        h.update(b"i" + _PACK_LEN(len(data)) + data)
    elif t is float:
        h.update(b"f" + _PACK_DOUBLE(obj))
    elif t is str:
        data = obj.encode("utf-8", "surrogatepass")
        h.update(b"s" + _PACK_LEN(len(data)) + data)
    elif t is bytes or t is bytearray or t is memoryview:
        data = bytes(obj)
        h.update(b"b" + _PACK_LEN(len(data)) + data)
    elif t is list or t is tuple:
        h.update((b"l" if t is list else b"t") + _PACK_LEN(len(obj)))
        for item in obj:
            _feed(h, item)
    elif t is dict:
        _feed_mapping(h, obj)
    elif t is set or t is frozenset:
        digests = sorted(hash_value(item) for item in obj)
        h.update(b"S" + _PACK_LEN(len(digests)) + "".join(digests).encode())
    elif t is complex:
        h.update(b"c" + _PACK_DOUBLE(obj.real) + _PACK_DOUBLE(obj.imag))
    else:
        _feed_other(h, obj)


def _feed_mapping(h: Any, obj: Any) -> None:
    # Keys of mixed types cannot be sorted directly; sort by their canonical digests.
    items = sorted((hash_value(k), v) for k, v in obj.items()) if obj else []
    h.update(b"d" + _PACK_LEN(len(items)))
    for key_digest, value in items:
        h.update(key_digest.encode())
        _feed(h, value)


def _feed_other(h: Any, obj: Any) -> None:
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(obj, np.ndarray):
            _feed_array(h, np, obj)
            return
        if isinstance(obj, np.generic):
            _feed_array(h, np, np.asarray(obj))
            return
    if isinstance(obj, bool):
        _feed(h, bool(obj))
    elif isinstance(obj, int):
        _feed(h, int(obj))
    elif isinstance(obj, float):
        _feed(h, float(obj))
    elif isinstance(obj, str):
        _feed(h, str(obj))
    elif isinstance(obj, dict):
        _feed_mapping(h, obj)
    elif isinstance(obj, list | tuple):
        _feed(h, list(obj) if isinstance(obj, list) else tuple(obj))
    elif isinstance(obj, type | types.FunctionType | types.BuiltinFunctionType):
        h.update(b"C" + callable_fingerprint(obj).encode())
    else:
        from soma.filter import Filter

        if isinstance(obj, Filter):
            h.update(b"F" + filter_fingerprint(obj).encode())
            return
        import cloudpickle

        data = cloudpickle.dumps(obj, protocol=5)
        name = f"{type(obj).__module__}.{type(obj).__qualname__}".encode()
        h.update(b"P" + _PACK_LEN(len(name)) + name + _PACK_LEN(len(data)) + data)


def _feed_array(h: Any, np: Any, arr: Any) -> None:
    header = f"{arr.dtype.str}|{arr.shape}".encode()
    h.update(b"A" + _PACK_LEN(len(header)) + header)
    if arr.dtype.hasobject:
        for item in arr.ravel(order="C").tolist():
            _feed(h, item)
        return
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    h.update(memoryview(arr).cast("B"))


# -- code fingerprints ---------------------------------------------------------------

_class_cache: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()
_class_lock = threading.Lock()


def class_fingerprint(cls: type) -> str:
    """Module, qualified name and normalized code of ``cls`` and its user-defined bases."""
    with _class_lock:
        cached = _class_cache.get(cls)
    if cached is not None:
        return cached
    parts = []
    for klass in cls.__mro__:
        if klass is object or (klass.__module__.startswith("soma.") and klass is not cls):
            continue
        parts.append(f"{klass.__module__}.{klass.__qualname__}")
        parts.append(_class_code(klass))
        parts.append(_class_refs(klass))
    digest = combine("class", *parts)
    with _class_lock:
        _class_cache[cls] = digest
    return digest


def _class_code(klass: type) -> str:
    try:
        return _source_digest(inspect.getsource(klass))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return _namespace_bytecode(klass)


def _function_code(func: types.FunctionType) -> str:
    try:
        return _source_digest(inspect.getsource(func))
    except Exception:  # no source, or a lambda's line that does not parse alone: bytecode
        h = hashlib.sha256(b"bytecode" + sys.version.encode())
        _feed_code(h, func.__code__)
        return h.hexdigest()


def _source_digest(source: str) -> str:
    # The dump walks the tree too, so it stays under the same lock as the parse.
    with AST_LOCK:
        dump = _normalized_dump(parse_python(textwrap.dedent(source)))
    return hashlib.sha256(dump.encode()).hexdigest()


# -- what a class's code refers to ----------------------------------------------------
#
# A class's own source is not all of its behaviour: a method may call a helper function
# or read a constant defined next to it in the same file, or close over a variable of the
# function that made the class. Editing that helper or constant, or making the class
# twice with different closure values, must change the fingerprint, or the cache would
# return results computed by other code. Followed: closure values, and module globals a
# method names that are functions or classes of the same module (by normalized source,
# transitively) or immutable plain values. Not followed: other modules (installed
# libraries change with their version, not with a researcher's edit) and mutable
# module-level objects (their content at hashing time says nothing stable).

_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def _class_refs(klass: type) -> str:
    h = hashlib.sha256(b"refs")
    seen: set[int] = {id(klass)}
    for name, value in sorted(vars(klass).items()):
        func = _as_function(value)
        if func is not None:
            h.update(name.encode())
            _feed_refs(h, func, klass.__module__, seen)
    return h.hexdigest()


def _as_function(value: Any) -> types.FunctionType | None:
    value = getattr(value, "__func__", value)  # classmethod / staticmethod
    if isinstance(value, property):
        value = value.fget
    return value if isinstance(value, types.FunctionType) else None


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _feed_refs(h: Any, func: types.FunctionType, module: str, seen: set[int]) -> None:
    for cell in func.__closure__ or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            contents = None
        _feed_ref(h, contents, module, seen, closure=True)
    namespace = func.__globals__
    for name in sorted(_code_names(func.__code__)):
        if name in namespace:
            h.update(b"g" + name.encode())
            _feed_ref(h, namespace[name], module, seen, closure=False)


def _feed_ref(h: Any, value: Any, module: str, seen: set[int], *, closure: bool) -> None:
    if isinstance(value, types.ModuleType) or id(value) in seen:
        return
    if isinstance(value, types.FunctionType | type) and value.__module__ != module:
        h.update(f"n{value.__module__}.{value.__qualname__}".encode())  # which one, by name
        return
    if isinstance(value, types.FunctionType):
        seen.add(id(value))
        h.update(b"f" + _function_code(value).encode())
        _feed_refs(h, value, module, seen)
        return
    if isinstance(value, type):
        seen.add(id(value))
        h.update(b"c" + _class_code(value).encode())
        for _name, member in sorted(vars(value).items()):
            func = _as_function(member)
            if func is not None:
                _feed_refs(h, func, module, seen)
        return
    if _is_plain_constant(value):
        h.update(b"v" + hash_value(value).encode())
    elif closure:  # a closure value is part of what the class does, mutable or not
        h.update(b"v" + _safe_hash(value).encode())


def _is_plain_constant(value: Any) -> bool:
    if isinstance(value, _SCALARS):
        return True
    if type(value) in (tuple, frozenset):
        return all(_is_plain_constant(item) for item in value)
    return False


def _normalized_dump(tree: ast.AST) -> str:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _namespace_bytecode(klass: type) -> str:
    """Fallback when the source is unavailable (classes made in a REPL or by exec)."""
    h = hashlib.sha256(b"bytecode" + sys.version.encode())
    for name, value in sorted(vars(klass).items()):
        if name in ("__dict__", "__weakref__", "__module__", "__qualname__", "__doc__"):
            continue
        h.update(name.encode())
        func = getattr(value, "__func__", value)  # classmethod / staticmethod
        if isinstance(func, property):
            func = func.fget
        if isinstance(func, types.FunctionType):
            _feed_code(h, func.__code__)
        else:
            try:
                _feed(h, value)
            except Exception:  # an attribute that cannot be hashed: its type still counts
                h.update(type(value).__qualname__.encode())
    return h.hexdigest()


def _feed_code(h: Any, code: types.CodeType) -> None:
    # Line numbers (co_linetable, co_firstlineno) are left out: moving code does not change it.
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    h.update(repr(code.co_varnames).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(h, const)
        else:
            # Canonical hashing, not repr(): a set literal compiles to a frozenset whose
            # repr order follows string hash randomization, so it differed per process.
            h.update(_safe_hash(const).encode())


def callable_fingerprint(func: Any) -> str:
    """Fingerprint of a predicate or other callable: its code, defaults and closure values."""
    if isinstance(func, type):
        return class_fingerprint(func)
    from soma.filter import Filter

    if isinstance(func, Filter):
        return filter_fingerprint(func)
    target = getattr(func, "__func__", func)
    code = getattr(target, "__code__", None)
    if code is None:
        if isinstance(func, types.BuiltinFunctionType):
            return combine("builtin", f"{func.__module__}.{func.__qualname__}")
        # A callable object: its class's code and its attributes.
        state = vars(func) if hasattr(func, "__dict__") else {}
        return combine("object", class_fingerprint(type(func)), _safe_hash(state))
    h = hashlib.sha256(b"func" + sys.version.encode())
    h.update(f"{target.__module__}.{target.__qualname__}".encode())
    _feed_code(h, code)
    h.update(_safe_hash(target.__defaults__).encode())
    h.update(_safe_hash(target.__kwdefaults__).encode())
    if isinstance(target, types.FunctionType):
        _feed_refs(h, target, target.__module__, {id(target)})
    return h.hexdigest()


def _safe_hash(value: Any) -> str:
    try:
        return hash_value(value)
    except Exception:
        return f"unhashable:{type(value).__qualname__}"


def filter_fingerprint(f: Any) -> str:
    """Class identity + normalized source + parameters of a filter instance (hex)."""
    cached = f.__dict__.get("_soma_fingerprint")
    if cached is not None:
        return cached
    extra = f._soma_fingerprint_parts() if hasattr(f, "_soma_fingerprint_parts") else ()
    digest = combine("filter", class_fingerprint(type(f)), hash_value(f.params), *extra)
    object.__setattr__(f, "_soma_fingerprint", digest)  # params are immutable after __init__
    return digest


def graph_fingerprint(graph: Graph) -> str:
    """Code and parameter fingerprint of a whole graph: nodes, edges, control structure."""
    return graph.fingerprint()

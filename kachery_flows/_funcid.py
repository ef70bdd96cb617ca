"""What identifies a memoized function: its name, a fingerprint of its code, its arguments.

* identity: ``module.qualname`` of the function as defined.
* code fingerprint: SHA-1 of the normalized source, i.e. ``ast.unparse`` of the ``def`` with
  its decorators and docstrings removed, so comments, blank lines, formatting and
  docstrings do not matter. When the source cannot be read (``python -c``, ``exec``, some
  frozen apps) the fallback hashes the code object (bytecode, names, constants), which is
  stable for one Python version but changes between versions; pass ``version=`` to make
  keys independent of both.
* closure: the values a nested function captured from its enclosing scope are hidden
  arguments (``make_filter(2.0)`` and ``make_filter(3.0)`` must not share entries), so
  they are part of the key: captured functions by identity and code fingerprint, classes
  and modules by name, everything else by its content token.
* arguments: bound like a call would bind them (defaults applied, keyword and positional
  spellings agree) into a ``name -> value`` dict.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import sys
import textwrap
import types
from collections.abc import Callable, Iterable
from typing import Any

from .errors import UnhashableArgumentError
from .tokens import canonical_encoding, frame

__all__ = [
    "ArgBinder",
    "CallShape",
    "call_shape",
    "closure_fingerprint",
    "code_fingerprint",
    "function_identity",
    "may_rename",
]


class CallShape:
    """What a callable handed to ``@kachery_cached`` is made of.

    ``target`` is the Python function (or builtin) whose identity, code and signature make
    the key; ``pre_args``/``pre_kwargs`` are the arguments the callable binds before the
    caller's (a bound method's instance, a :func:`functools.partial`'s arguments): they
    are part of every key, like arguments passed at the call.
    """

    __slots__ = ("pre_args", "pre_kwargs", "target")

    def __init__(
        self, target: Callable[..., Any], pre_args: tuple[Any, ...], pre_kwargs: dict[str, Any]
    ) -> None:
        self.target = target
        self.pre_args = pre_args
        self.pre_kwargs = pre_kwargs


def call_shape(func: Callable[..., Any]) -> CallShape:
    """Unwrap bound methods and :func:`functools.partial` objects (nested in any order)
    down to the function they call, collecting the arguments they bind."""
    import functools

    pre_args: tuple[Any, ...] = ()
    pre_kwargs: dict[str, Any] = {}
    target: Any = func
    for _ in range(100):
        if isinstance(target, functools.partial):
            pre_args = target.args + pre_args
            pre_kwargs = {**target.keywords, **pre_kwargs}
            target = target.func
        elif isinstance(target, types.MethodType):
            pre_args = (target.__self__, *pre_args)
            target = target.__func__
        else:
            break
    if inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target):
        raise TypeError(
            f"cannot memoize {func!r}: it is a generator function, and a generator is "
            "consumed as it runs; memoize a function that returns a list (or an array) of "
            "its items instead"
        )
    return CallShape(target, pre_args, pre_kwargs)


def may_rename(func: Callable[..., Any]) -> bool:
    """Whether ``func``'s ``__qualname__`` may get ``.__wrapped__`` appended so that plain
    pickle finds it through its wrapper.

    Only a ``def`` being decorated with ``@``, i.e. a module- or class-level function not
    (yet) bound under its own name: a function reachable under its name belongs to
    someone else (``kachery_cached(json.dumps)``, ``g = kachery_cached(f)``) and is left
    untouched; local functions cannot be pickled by reference anyway.
    """
    if type(func) is not types.FunctionType:
        return False
    qualname, module = func.__qualname__, sys.modules.get(func.__module__)
    if "<locals>" in qualname or qualname.endswith(".__wrapped__") or module is None:
        return False
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return True
    return obj is not func and getattr(obj, "__wrapped__", None) is not func


def function_identity(func: Callable[..., Any]) -> str:
    """``module.qualname`` of ``func`` (module ``<exec>`` for code run without a module).

    A function already wrapped once has ``.__wrapped__`` appended to its qualname (so that
    pickle finds it through the wrapper); it keeps its original identity when wrapped again.
    """
    module = getattr(func, "__module__", None) or "<exec>"
    qualname = getattr(func, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(
            f"cannot memoize {func!r}: it has no __module__/__qualname__; decorate a function "
            "defined with def (or async def)"
        )
    return f"{module}.{qualname.removesuffix('.__wrapped__')}"


def code_fingerprint(func: Callable[..., Any]) -> str:
    """``source:<sha1>`` of the normalized source, else ``bytecode-<py>:<sha1>``."""
    node = _function_node(func)
    if node is not None:
        text = ast.unparse(node)
        return "source:" + hashlib.sha1(text.encode("utf-8")).hexdigest()
    code = getattr(func, "__code__", None)
    if not isinstance(code, types.CodeType):
        raise TypeError(
            f"cannot fingerprint the code of {func!r} (no source and no __code__); pass "
            "version=... to @kachery_cached"
        )
    tag = f"bytecode-{sys.version_info[0]}.{sys.version_info[1]}"
    return f"{tag}:{_code_digest(code)}"


def closure_fingerprint(func: Callable[..., Any], *, strict: bool) -> str | None:
    """SHA-1 of the values ``func`` captured from enclosing scopes (None if it has none).

    With ``strict`` a captured value without a content token raises
    :class:`UnhashableArgumentError`; otherwise it is left out (the caller pinned the code
    with ``version=``). Cells not bound yet (e.g. the function itself) are skipped.
    """
    cells = getattr(func, "__closure__", None)
    code = getattr(func, "__code__", None)
    if not cells or not isinstance(code, types.CodeType):
        return None
    h = hashlib.sha1()
    for name, cell in zip(code.co_freevars, cells, strict=True):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        try:
            encoding = _captured_encoding(value)
        except UnhashableArgumentError as exc:
            if strict:
                raise UnhashableArgumentError(
                    f"{function_identity(func)} captures {name!r} from its enclosing scope, "
                    f"which is part of the memo key, but: {exc} Pass it as an argument, or "
                    "give version=... to leave captured values without a token out of the key."
                ) from None
            continue
        # framed by its length in characters, not bytes (unlike tokens.frame): existing
        # keys of functions capturing non-ASCII names depend on it
        h.update(len(name).to_bytes(8, "little") + name.encode())
        h.update(encoding)
    return h.hexdigest()


def _captured_encoding(value: Any) -> bytes:
    if isinstance(value, types.FunctionType):
        return b"F" + function_identity(value).encode() + b"|" + code_fingerprint(value).encode()
    if isinstance(value, (type, types.ModuleType, types.BuiltinFunctionType)):
        return b"G" + repr(value).encode()
    identity = getattr(value, "identity", None)
    if callable(value) and isinstance(identity, str) and hasattr(value, "__wrapped__"):
        return b"C" + identity.encode()  # another cached function
    return canonical_encoding(value)


def _function_node(func: Callable[..., Any]) -> ast.AST | None:
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return None
    text = textwrap.dedent(source)
    if text[:1].isspace():
        # A multi-line string at column 0 inside an indented def defeats dedent.
        text = "if True:\n" + text
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    name = getattr(func, "__name__", None)
    if name == "<lambda>":
        lambdas = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)]
        return lambdas[0] if len(lambdas) == 1 else None
    for node in ast.walk(tree):  # breadth-first: the outermost matching def comes first
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            node.decorator_list = []
            _strip_docstrings(node)
            return node
    return None


def _strip_docstrings(root: ast.AST) -> None:
    for node in ast.walk(root):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]


def _code_digest(code: types.CodeType) -> str:
    h = hashlib.sha1()
    for part in (code.co_code, *(n.encode() for n in code.co_names)):
        h.update(frame(part))
    h.update(repr((code.co_varnames, code.co_freevars, code.co_cellvars)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            h.update(b"C" + _code_digest(const).encode())
        else:
            try:
                h.update(b"K" + canonical_encoding(const))
            except TypeError:
                h.update(b"R" + repr(const).encode())
    return h.hexdigest()


_ANY_SIGNATURE = inspect.Signature(
    [
        inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
        inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
    ]
)
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class ArgBinder:
    """Binds call arguments to parameter names the way the call itself would.

    The common case (no ``*args``/``**kwargs``, no positional-only parameters) takes a fast
    path; anything else, including every malformed call, goes through
    :meth:`inspect.Signature.bind`, which raises the same ``TypeError`` the call would.
    """

    def __init__(self, func: Callable[..., Any], ignore: Iterable[str] = ()) -> None:
        try:
            self.signature = inspect.signature(func)
        except ValueError:  # a builtin without a text signature: key on what is passed
            self.signature = _ANY_SIGNATURE
        params = list(self.signature.parameters.values())
        names = [p.name for p in params]
        ignored = set(ignore)
        unknown = sorted(ignored - set(names))
        if unknown:
            raise ValueError(
                f"ignore={unknown!r} names no parameter of {function_identity(func)}; its "
                f"parameters are {names}"
            )
        #: Names that take part in the key, sorted.
        self.key_names: tuple[str, ...] = tuple(sorted(n for n in names if n not in ignored))
        simple = all(p.kind in _KEYWORD for p in params)
        self._positional: tuple[str, ...] | None = (
            tuple(p.name for p in params if p.kind in _POSITIONAL) if simple else None
        )
        self._keywords = frozenset(p.name for p in params if p.kind in _KEYWORD)
        self._defaults = {p.name: p.default for p in params if p.default is not p.empty}
        self._count = len(params)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """``name -> value`` for every parameter (defaults applied)."""
        positional = self._positional
        if positional is None or len(args) > len(positional):
            return self._bind_slow(args, kwargs)
        values = dict(zip(positional, args, strict=False))
        for name, value in kwargs.items():
            if name in values or name not in self._keywords:
                return self._bind_slow(args, kwargs)
            values[name] = value
        if len(values) < self._count:
            for name, default in self._defaults.items():
                values.setdefault(name, default)
            if len(values) < self._count:
                return self._bind_slow(args, kwargs)
        return values

    def _bind_slow(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

"""``KacheryInputs``: a Prefect cache policy keyed by content tokens and task identity.

The key is the SHA-1 (40 hex) of: a schema tag, the task function's ``module.qualname``,
the version (the policy's ``version``, else the task's ``version=``), and every input not
in ``exclude``, sorted by name, each as :func:`kachery_flows.tokens.canonical_encoding`
(the tokens ``@kachery_cached`` uses), framed by :func:`kachery_flows.tokens.key_of` as memo
keys are. Compared with Prefect's ``INPUTS``:

* two tasks with equal inputs get different keys (``INPUTS`` shares one entry);
* an array is hashed in place (xxh3 of its buffer), never pickled, and a strided view
  keys like its copy;
* sets and frozensets key the same in every process, whatever ``PYTHONHASHSEED`` is;
* a Ref or ``sha1://`` URI keys by its hash alone (labels ignored, no I/O);
* an input without a content token raises
  :class:`~kachery_flows.errors.UnhashableArgumentError` (Prefect logs it and runs the
  task without caching) instead of falling back to pickle.

Compose it like Prefect's policies: ``KacheryInputs() + TASK_SOURCE`` (that is
:data:`KACHERY_DEFAULT`), ``.configure(isolation_level=..., lock_manager=...)``;
``KacheryInputs() - "verbose"`` is ``KacheryInputs(exclude=["verbose"])``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from prefect.cache_policies import TASK_SOURCE, CachePolicy
from prefect.context import TaskRunContext

from .._funcid import function_identity
from ..tokens import argument_encoding, frame, key_header, key_of

__all__ = ["KACHERY_DEFAULT", "PREFECT_KEY_SCHEMA", "KacheryInputs"]

#: Schema tag at the start of every key's material; bumped if the encoding changes.
PREFECT_KEY_SCHEMA = "kachery-flows-prefect-key-1"

#: Set on task functions that :func:`~kachery_flows.prefect.kachery_task` wraps to return
#: a Ref, so they never share keys with a task returning the value itself.
_RETURNS_REF = "__kachery_returns_ref__"


@dataclass
class KacheryInputs(CachePolicy):
    """Cache key from the task's identity, version and the content of its inputs.

    Parameters
    ----------
    exclude:
        Input names left out of the key (``"self"`` for methods, ``verbose``, ...).
    version:
        A code version for the key; default: the task's own ``version=``. Bump it when
        the task's behaviour changes (or compose with ``TASK_SOURCE`` to follow its
        source text).

    Examples
    --------
    Keys can be computed offline, without a Prefect server:

    >>> from prefect import task
    >>> from kachery_flows.prefect import KacheryInputs
    >>> @task
    ... def square(x): return x * x
    >>> @task
    ... def cube(x): return x ** 3
    >>> policy = KacheryInputs()
    >>> policy.key_for(square, {"x": 3}) == policy.key_for(cube, {"x": 3})  # identity counts
    False
    >>> view = np.arange(10.0)[::2]
    >>> policy.key_for(square, {"x": view}) == policy.key_for(square, {"x": view.copy()})
    True
    """

    exclude: list[str] = field(default_factory=list)
    version: str | None = None

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        """The key of a task run (Prefect calls this); None without a task run context."""
        if task_ctx is None:
            return None
        return self.key_for(task_ctx.task, inputs or {})

    def key_for(self, task: Any, inputs: Mapping[str, Any]) -> str:
        """The key of running ``task`` (a Prefect ``Task``) with ``inputs``.

        ``inputs`` maps parameter names to values, defaults included, as Prefect passes
        them to :meth:`compute_key`. Nothing runs and no server is needed.
        """
        fn = task.fn
        identity = function_identity(fn)
        if getattr(fn, _RETURNS_REF, False):
            identity += "->Ref"
        version = self.version if self.version is not None else getattr(task, "version", None)
        excluded = set(self.exclude)
        owner = f"task {identity}"
        return key_of(
            key_header(PREFECT_KEY_SCHEMA, identity, version),
            (
                (frame(name.encode()), argument_encoding(inputs[name], "input", name, owner))
                for name in sorted(inputs)
                if name not in excluded
            ),
        )

    def __sub__(self, other: str) -> KacheryInputs:
        """A copy that also excludes the input ``other``."""
        if not isinstance(other, str):
            raise TypeError("Can only subtract strings from key policies.")
        return replace(self, exclude=[*self.exclude, other])


KACHERY_DEFAULT: CachePolicy = KacheryInputs() + TASK_SOURCE
"""``KacheryInputs() + TASK_SOURCE``: the task's identity, the content of its inputs and its
source text (editing the task invalidates its entries). ``kachery_task``'s default policy."""

"""Prefect plugin: registers the ``kachery`` serializer in every process that imports Prefect.

Prefect resolves ``PREFECT_RESULTS_DEFAULT_SERIALIZER=kachery`` (and the ``"type":
"kachery"`` of a stored result record) through its serializer registry, which only knows
classes that were imported. Prefect's plugin system imports this module through the
``prefect.plugins`` entry point when ``import prefect`` runs with
``PREFECT_PLUGINS_ENABLED=true`` (or ``[plugins] enabled = true`` in ``prefect.toml``), and
calls :func:`setup_environment`, which imports :mod:`kachery_flows.prefect`: a flow file that
never imports kachery-flows, the worker and its flow-run processes, and any process calling
``state.result()`` then all know ``KacherySerializer`` and ``KacheryStorage``.
"""

from __future__ import annotations

from typing import Any

from prefect.plugins import register_hook

__all__ = ["setup_environment"]


@register_hook
def setup_environment(*, ctx: Any) -> None:
    """Prefect's startup hook: import :mod:`kachery_flows.prefect` (which registers the
    ``kachery`` serializer type and the ``kachery-storage`` block type); sets no
    environment variables."""
    import kachery_flows.prefect  # noqa: F401

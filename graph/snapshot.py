"""The trust graph rebuilt from the store's current records, without touching any tenant.

``nhiscan graph ...`` and the HTML report ask their questions of this graph:
the records the last sweeps left in the store (fresh ones, and those carried
from a failed read), joined with the config's identity hints exactly as a sweep
joins them.
"""

from __future__ import annotations

import logging

import networkx as nx

from graph.build import build_graph
from scanner.config import Config
from scanner.records import Record, record_from_dict
from scanner.store import Store

log = logging.getLogger("nhiscan.graph")


def current_records(store: Store) -> list[Record]:
    """Every record the store holds as current; one it cannot revive is logged and skipped."""
    out: list[Record] = []
    for row in store.current_records():
        try:
            out.append(record_from_dict(row.data))
        except (KeyError, TypeError, ValueError) as err:
            log.warning("store: could not revive %s: %s", row.key, type(err).__name__)
    return out


def graph_from_store(store: Store, config: Config) -> nx.MultiDiGraph:
    """The identity-trust graph of the store's current records (no network)."""
    from scanner.sweep import hints_from_config  # scanner.sweep imports graph; keep the cycle lazy

    return build_graph(current_records(store), hints_from_config(config))

"""The trust graph for other tools: GraphML (Gephi, yEd, Neo4j's import) and node-link JSON.

Attributes are flattened to scalars (GraphML allows nothing else): a node
carries its key, record kind, name, type, source and the fields a reader needs
to make sense of it; an edge carries its relation, evidence, confidence and
level. Keyed hashes and previews of secret values are left out: another tool
has no use for them, and the fewer places they travel the better.
"""

from __future__ import annotations

import io
import json
from typing import Any

import networkx as nx

from graph.queries import type_of
from scanner.records import Record

# Fields that exist to match a secret, never to describe an identity.
_SECRET_FIELDS = {"value_hmac", "secret_hmac", "preview"}
_NODE_FIELDS = ("source", "inventory", "url", "status", "privilege", "login", "email", "is_human", "third_party",
                "created_at", "last_used_at", "last_active_at", "expires_at", "rotated_at", "account_key",
                "parent_key", "visibility", "contract_id", "counterparty", "start", "end", "sponsor_email",
                "end_date", "manager_email", "worker_type", "statuses", "location", "credential_key", "scopes", "role")


def node_attributes(rec: Record) -> dict[str, Any]:
    """A record as flat, JSON- and GraphML-safe attributes (no secret hashes or previews)."""
    data = rec.to_dict()
    out: dict[str, Any] = {"kind": rec.kind, "name": rec.name, "type": type_of(rec)}
    for name in _NODE_FIELDS:
        value = data.get(name)
        if name in _SECRET_FIELDS or value is None or value == [] or value == "":
            continue
        out[name] = _scalar(value)
    return out


def edge_attributes(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"rel": data["rel"]}
    for name in ("evidence", "confidence", "role", "level", "scopes"):
        value = data.get(name)
        if value is None or value == () or value == []:
            continue
        out[name] = _scalar(value.name.lower() if hasattr(value, "name") and name == "level" else value)
    return out


def _scalar(value: Any) -> str | int | float | bool:
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return json.dumps(value, sort_keys=True, default=str)


def export_graph(g: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy of the graph with flat attributes only, nodes and edges in a stable order."""
    out = nx.MultiDiGraph()
    for key in sorted(g.nodes):
        out.add_node(key, **node_attributes(g.nodes[key]["record"]))
    edges = sorted(g.edges(data=True), key=lambda e: (e[0], e[1], e[2]["rel"], str(e[2].get("evidence", ""))))
    for src, dst, data in edges:
        out.add_edge(src, dst, **edge_attributes(data))
    return out


def to_graphml(g: nx.MultiDiGraph) -> str:
    buf = io.BytesIO()
    nx.write_graphml(export_graph(g), buf, encoding="utf-8", prettyprint=True)
    return buf.getvalue().decode("utf-8")


def to_json(g: nx.MultiDiGraph) -> dict[str, Any]:
    """Node-link JSON (``nodes`` with ``id``, ``links`` with ``source``/``target``), as networkx and D3 read it."""
    data = nx.node_link_data(export_graph(g), edges="links")
    data["graph"] = {"generator": "nhiscan"}
    return data

"""Questions asked of the trust graph: who owns this, who sponsors it, what can it reach.

Plain functions over the graph :func:`graph.build.build_graph` returns; they
never do I/O, so rules and reports can share them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import date, datetime

import networkx as nx

from graph.build import AUTHENTICATES_AS, CAN_ACCESS, CONTAINS, COVERS, HAS_ACCOUNT, OWNS, SPONSORED_BY
from scanner.records import Contract, Person, Privilege, Record


@dataclass(frozen=True)
class Owner:
    """An accountable human (or, failing that, the account) and the evidence chain for it."""

    person: Person | None
    account_key: str | None
    role: str  # owner | creator | installer | account holder
    evidence: tuple[str, ...]
    confidence: float

    @property
    def label(self) -> str:
        if self.person:
            return self.person.email
        return self.account_key or "?"


@dataclass(frozen=True)
class Sponsorship:
    contract: Contract
    person: Person | None
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Reach:
    resource_key: str
    name: str
    level: Privilege
    path: tuple[str, ...]


def record(g: nx.MultiDiGraph, key: str) -> Record:
    return g.nodes[key]["record"]


def person_of_account(g: nx.MultiDiGraph, account_key: str) -> tuple[Person, str] | None:
    for src, _dst, data in g.in_edges(account_key, data=True):
        if data["rel"] == HAS_ACCOUNT:
            return g.nodes[src]["record"], data["evidence"]
    return None


def owners(g: nx.MultiDiGraph, key: str) -> list[Owner]:
    """Owners of a subject with the evidence for each, most confident first."""
    found: dict[str, Owner] = {}

    def add(o: Owner) -> None:
        ident = o.label
        if ident not in found or found[ident].confidence < o.confidence:
            found[ident] = o

    for src, _dst, data in g.in_edges(key, data=True):
        if data["rel"] != OWNS:
            continue
        node = g.nodes[src]
        if node["kind"] == "person":
            add(Owner(node["record"], None, data.get("role", "owner"), (data["evidence"],), data["confidence"]))
        else:  # an account named as owner: walk on to its human
            human = person_of_account(g, src)
            login = getattr(node["record"], "login", None) or node["name"]
            if human:
                add(Owner(human[0], src, data.get("role", "owner"), (f"{data['evidence']}: {login}", human[1]), data["confidence"] * 0.95))
            else:
                add(Owner(None, src, data.get("role", "owner"), (f"{data['evidence']}: {login}", f"no person known for {login}"), 0.3))
    for _src, dst, data in g.out_edges(key, data=True):
        if data["rel"] == AUTHENTICATES_AS:
            acc = record(g, dst)
            human = person_of_account(g, dst)
            if human:
                add(Owner(human[0], dst, "account holder", (f"authenticates as {getattr(acc, 'login', None) or acc.name}", human[1]), 0.9))
            elif not getattr(acc, "is_human", False):
                for o in owners(g, dst):
                    add(Owner(o.person, o.account_key, o.role, (f"authenticates as {acc.name}",) + o.evidence, o.confidence * 0.9))
    return sorted(found.values(), key=lambda o: -o.confidence)


def contracts_of(g: nx.MultiDiGraph, key: str) -> list[tuple[Contract, str]]:
    out = []
    for src, _dst, data in g.in_edges(key, data=True):
        if data["rel"] == COVERS:
            out.append((g.nodes[src]["record"], data["evidence"]))
    return sorted(out, key=lambda c: c[0].contract_id)


def sponsor_of(g: nx.MultiDiGraph, contract_key: str) -> Person | None:
    for _src, dst, data in g.out_edges(contract_key, data=True):
        if data["rel"] == SPONSORED_BY:
            return g.nodes[dst]["record"]
    return None


def sponsors(g: nx.MultiDiGraph, key: str) -> list[Sponsorship]:
    out = []
    for contract, why in contracts_of(g, key):
        person = sponsor_of(g, contract.key)
        ev = (why, f"contract {contract.contract_id} sponsor: {contract.sponsor_email or 'none named'}")
        out.append(Sponsorship(contract, person, ev))
    return out


def covered(g: nx.MultiDiGraph, contract_key: str) -> list[tuple[str, str]]:
    """(subject key, evidence) for everything a contract covers."""
    return sorted((dst, data["evidence"]) for _s, dst, data in g.out_edges(contract_key, data=True) if data["rel"] == COVERS)


def reach(g: nx.MultiDiGraph, key: str) -> list[Reach]:
    """Resources a subject can reach, transitively (grants, then containment), with the path.

    A credential with grants of its own reaches only those; one without (a
    classic PAT, an SSH key) acts as its account and reaches what that can.
    """
    starts: list[tuple[str, tuple[str, ...]]] = [(key, (key,))]
    own_grants = any(d["rel"] == CAN_ACCESS for _s, _d, d in g.out_edges(key, data=True))
    if not own_grants:
        for _s, dst, d in g.out_edges(key, data=True):
            if d["rel"] == AUTHENTICATES_AS:
                starts.append((dst, (key, dst)))
    best: dict[str, Reach] = {}
    queue: deque[tuple[str, Privilege, tuple[str, ...]]] = deque()
    for node, path in starts:
        for _s, dst, d in g.out_edges(node, data=True):
            if d["rel"] == CAN_ACCESS:
                queue.append((dst, d["level"], path + (dst,)))
    while queue:
        node, level, path = queue.popleft()
        if node in best and best[node].level >= level:
            continue
        best[node] = Reach(node, g.nodes[node]["name"], level, path)
        for _s, dst, d in g.out_edges(node, data=True):
            if d["rel"] == CONTAINS and dst not in path:
                queue.append((dst, level, path + (dst,)))
    return sorted(best.values(), key=lambda r: (len(r.path), r.resource_key))


def is_departed(person: Person | None, today: date) -> bool:
    if person is None:
        return False
    return person.status == "departed" or (person.end_date is not None and person.end_date < today and person.status != "active")


def contract_ended(contract: Contract, today: date) -> bool:
    return contract.status in ("ended", "terminated") or (contract.end is not None and contract.end < today)


def as_date(now: datetime) -> date:
    return now.date()

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


# --- questions the CLI and the HTML report ask (``nhiscan graph ...``) -------------------

# Record kinds a person may name as the subject of a graph question.
SUBJECT_KINDS = ("account", "credential", "exposure", "resource")


class AmbiguousSubject(LookupError):
    """A name that several records carry; ``candidates`` are their keys, for the user to pick one."""

    def __init__(self, query: str, candidates: list[str]):
        self.query, self.candidates = query, candidates
        super().__init__(f"'{query}' matches {len(candidates)} records: " + ", ".join(candidates))


def find_subject(g: nx.MultiDiGraph, query: str, kinds: tuple[str, ...] = SUBJECT_KINDS) -> str | None:
    """The node a user means by ``query``: a record key, else the one record whose name or login is it.

    Names are compared case-insensitively and exactly (never fuzzily): a name
    several records carry raises :class:`AmbiguousSubject` listing their keys.
    """
    if query in g and g.nodes[query]["kind"] in kinds:
        return query
    folded = query.casefold()
    hits = []
    for key, data in g.nodes(data=True):
        if data["kind"] not in kinds:
            continue
        rec = data["record"]
        names = {rec.name, getattr(rec, "login", None), getattr(rec, "email", None)}
        if any(n is not None and n.casefold() == folded for n in names):
            hits.append(key)
    if len(hits) > 1:
        raise AmbiguousSubject(query, sorted(hits))
    return hits[0] if hits else None


def find_contract(g: nx.MultiDiGraph, contract_id: str) -> Contract | None:
    """A contract by its register id (``C-100``, case-insensitive) or its record key."""
    if contract_id in g and g.nodes[contract_id]["kind"] == "contract":
        return g.nodes[contract_id]["record"]
    for _key, data in g.nodes(data=True):
        if data["kind"] == "contract" and data["record"].contract_id.casefold() == contract_id.casefold():
            return data["record"]
    return None


def is_live(rec: Record, now: datetime) -> bool:
    """Still usable: status active (or none given) and not past its expiry."""
    status = getattr(rec, "status", "active")
    if getattr(status, "value", status) != "active":
        return False
    expires = getattr(rec, "expires_at", None)
    return expires is None or expires > now


def type_of(rec: Record) -> str:
    """The specific kind of a record: credential type, account type, resource type, else its record kind."""
    for attr in ("credential_type", "account_type", "resource_type", "secret_type"):
        value = getattr(rec, attr, None)
        if value:
            return value
    return rec.kind


@dataclass(frozen=True)
class AccessPath:
    """One way a contract's counterparty can still get in, and why we tie it to the contract."""

    key: str
    name: str
    kind: str  # record kind: account | credential
    type: str  # deploy_key, app_installation, user, ...
    source: str
    live: bool
    evidence: tuple[str, ...]
    via: str | None  # the covered account it authenticates as, when the contract does not cover it directly
    reach: tuple[Reach, ...]


def contract_access_paths(g: nx.MultiDiGraph, contract_key: str, now: datetime, *, include_inactive: bool = False) -> list[AccessPath]:
    """The offboarding inventory of a contract: everything it covers, and every credential acting as one of those.

    A contract covers accounts and credentials (``COVERS``, by domain, name
    pattern or explicit key). A token that authenticates as a covered account
    is an access path of the same relationship even when no rule names it, so
    it is listed too, ``via`` that account. Expired, revoked or suspended ones
    are left out unless ``include_inactive``.
    """
    found: dict[str, AccessPath] = {}
    for key, evidence in covered(g, contract_key):
        rec = record(g, key)
        found[key] = AccessPath(key, rec.name, rec.kind, type_of(rec), rec.source, is_live(rec, now), (evidence,), None, tuple(reach(g, key)))
    for account_key in [k for k, p in found.items() if p.kind == "account"]:
        for src, _dst, data in g.in_edges(account_key, data=True):
            if data["rel"] != AUTHENTICATES_AS or src in found:
                continue
            rec = record(g, src)
            login = getattr(record(g, account_key), "login", None) or record(g, account_key).name
            found[src] = AccessPath(src, rec.name, rec.kind, type_of(rec), rec.source, is_live(rec, now),
                                    (f"authenticates as {login}, which the contract covers",), account_key, tuple(reach(g, src)))
    paths = [p for p in found.values() if include_inactive or p.live]
    return sorted(paths, key=lambda p: (p.source, p.type, p.name.casefold(), p.key))


# --- the neighbourhood picture -------------------------------------------------------------

# Columns of the layered picture, left to right.
COL_PEOPLE, COL_LINKS, COL_SUBJECT, COL_ACTS_AS, COL_RESOURCES, COL_CONTAINED, COL_DEEPER = range(7)


@dataclass(frozen=True)
class PictureNode:
    key: str
    label: str
    kind: str  # person | contract | account | credential | resource | exposure | more
    column: int
    note: str = ""  # a short state worth a colour: departed, ended, unknown person, unresolved


@dataclass(frozen=True)
class PictureEdge:
    src: str
    dst: str
    label: str


@dataclass(frozen=True)
class Neighbourhood:
    """What a finding's subject hangs from and what it reaches, in layers (people → links → subject → account → resources)."""

    subject: str
    nodes: tuple[PictureNode, ...]
    edges: tuple[PictureEdge, ...]
    hidden_resources: int = 0


def neighbourhood(g: nx.MultiDiGraph, key: str, now: datetime, *, max_resources: int = 6) -> Neighbourhood:
    """The subject's owners, sponsors, contracts, the account it acts as, and the resources it reaches.

    Deterministic (sorted) so the same graph always gives the same picture;
    resources are capped at ``max_resources`` (shortest paths first) and the
    rest counted in ``hidden_resources``.
    """
    today = now.date()
    nodes: dict[str, PictureNode] = {}
    edges: list[PictureEdge] = []

    def add(key_: str, label: str, kind: str, column: int, note: str = "") -> None:
        if key_ not in nodes:
            nodes[key_] = PictureNode(key_, label, kind, column, note)

    def person_note(p: Person | None) -> str:
        if p is None:
            return "unresolved"
        if is_departed(p, today):
            return "departed"
        if p.source == "inferred":
            return "unknown person"  # no people source lists them
        return ""

    subj = record(g, key)
    add(key, subj.name, subj.kind, COL_SUBJECT)
    holder = person_of_account(g, key) if subj.kind == "account" else None
    if holder:  # a human's own account: the person behind it
        add(holder[0].key, holder[0].email, "person", COL_PEOPLE, person_note(holder[0]))
        edges.append(PictureEdge(holder[0].key, key, "has account"))
    acts_as = sorted(dst for _s, dst, d in g.out_edges(key, data=True) if d["rel"] == AUTHENTICATES_AS)
    # A token with grants of its own reaches resources directly: its account is drawn on the left, as the
    # account holding it, so no edge to a resource has to cross it. Otherwise it acts as the account (right).
    own_grants = any(d["rel"] == CAN_ACCESS for _s, _d, d in g.out_edges(key, data=True))
    for acc in acts_as:
        rec = record(g, acc)
        if own_grants:
            add(acc, getattr(rec, "login", None) or rec.name, "account", COL_LINKS)
            edges.append(PictureEdge(acc, key, "holds"))
        else:
            add(acc, getattr(rec, "login", None) or rec.name, "account", COL_ACTS_AS)
            edges.append(PictureEdge(key, acc, "authenticates as"))

    for o in sorted(owners(g, key), key=lambda o: (o.label, o.account_key or "")):
        person_id = o.person.key if o.person else None
        if o.person:
            add(person_id, o.person.email, "person", COL_PEOPLE, person_note(o.person))
        if o.account_key and o.account_key not in acts_as:
            acc = record(g, o.account_key)
            add(o.account_key, getattr(acc, "login", None) or acc.name, "account", COL_LINKS, "" if o.person else "unresolved")
            edges.append(PictureEdge(o.account_key, key, o.role))
            if person_id:
                edges.append(PictureEdge(person_id, o.account_key, "has account"))
        elif person_id and o.account_key and own_grants:
            edges.append(PictureEdge(person_id, o.account_key, "has account"))
        elif person_id:
            edges.append(PictureEdge(person_id, key, o.role))

    for s in sponsors(g, key):
        c = s.contract
        add(c.key, f"{c.contract_id} {c.counterparty}", "contract", COL_LINKS, "ended" if contract_ended(c, today) else "")
        edges.append(PictureEdge(c.key, key, "covers"))
        if s.person:
            add(s.person.key, s.person.email, "person", COL_PEOPLE, person_note(s.person))
            edges.append(PictureEdge(s.person.key, c.key, "sponsors"))

    reaches = reach(g, key)
    shown = reaches[:max_resources]
    for r in shown:
        # A grant can also end at an account (an external AWS account may assume an IAM role).
        first_resource = next((i for i, k in enumerate(r.path) if g.nodes[k]["kind"] == "resource"), len(r.path) - 1)
        depth = len(r.path) - 1 - first_resource  # 0: granted directly; 1: inside that; 2+: deeper
        column = COL_RESOURCES + min(depth, COL_DEEPER - COL_RESOURCES)
        add(r.resource_key, r.name, "resource", column)
        parent = r.path[-2]
        if parent not in nodes:
            parent = key
        label = "contains" if g.nodes[parent]["kind"] == "resource" else r.level.name.lower()
        edges.append(PictureEdge(parent, r.resource_key, label))
    hidden = len(reaches) - len(shown)
    if hidden:
        column = max((n.column for n in nodes.values() if n.kind == "resource"), default=COL_RESOURCES)
        add("+more", f"+{hidden} more", "more", column)
    unique_edges = tuple(dict.fromkeys(edges))
    return Neighbourhood(key, tuple(nodes.values()), unique_edges, hidden)

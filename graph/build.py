"""Build the identity-trust graph from one snapshot of records.

A networkx ``MultiDiGraph``: node ids are record keys, node attribute
``record`` holds the record itself and ``kind`` its record kind. Edges carry a
``rel`` (``HAS_ACCOUNT``, ``OWNS``, ``SPONSORED_BY``, ``COVERS``,
``AUTHENTICATES_AS``, ``CAN_ACCESS``, ``CONTAINS``) and, for ownership and
contract links, the ``evidence`` that made us draw them and a ``confidence``.

Humans are resolved across systems by verified email first, then by explicit
login mappings from the config — never by fuzzy name matching.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Iterable

import networkx as nx

from scanner.records import Account, Contract, Credential, Grant, Person, Record, Resource

HAS_ACCOUNT = "HAS_ACCOUNT"
OWNS = "OWNS"
SPONSORED_BY = "SPONSORED_BY"
COVERS = "COVERS"
AUTHENTICATES_AS = "AUTHENTICATES_AS"
CAN_ACCESS = "CAN_ACCESS"
CONTAINS = "CONTAINS"


@dataclass(frozen=True)
class IdentityHints:
    """What the config tells the graph about people that APIs do not."""

    # source name -> {login: email}
    logins: dict[str, dict[str, str]] = field(default_factory=dict)
    # (record key, owner email, evidence)
    ownership: tuple[tuple[str, str, str], ...] = ()
    internal_domains: tuple[str, ...] = ()


def person_key(email: str) -> str:
    """One node per human, whichever people sources (HR, Okta, Entra) know them."""
    return f"person:{email.lower()}"


# Status precedence when people sources disagree: one saying "departed" is enough to act on.
_STATUS_RANK = {"departed": 3, "leave": 2, "active": 1}


def merge_people(people: list[Person]) -> Person:
    """Merge one human's records from several people sources into the graph's Person.

    HR's record leads for name, manager and worker type (it is the system of record for
    employment); the status is the most severe any source reports, and ``statuses`` keeps
    each source's own word.
    """
    people = sorted(people, key=lambda p: (p.source != "hr", p.source))
    lead = people[0]
    statuses = {p.source: p.status for p in people}
    status = max(statuses.values(), key=lambda s: _STATUS_RANK.get(s, 0))
    end_dates = [p.end_date for p in people if p.end_date]
    return Person(
        key=person_key(lead.email),
        source="+".join(sorted(statuses)),
        inventory=lead.inventory,
        name=lead.name,
        email=lead.email.lower(),
        status=status,
        end_date=min(end_dates) if end_dates else None,
        manager_email=next((p.manager_email for p in people if p.manager_email), None),
        worker_type=next((p.worker_type for p in people if p.worker_type), None),
        statuses=statuses,
    )


def build_graph(records: Iterable[Record], hints: IdentityHints | None = None) -> nx.MultiDiGraph:
    hints = hints or IdentityHints()
    g = nx.MultiDiGraph()
    records = list(records)
    people: dict[str, list[Person]] = {}
    for rec in records:
        if isinstance(rec, Person):
            people.setdefault(rec.email.lower(), []).append(rec)
        elif not isinstance(rec, Grant):
            g.add_node(rec.key, record=rec, kind=rec.kind, name=rec.name)
    for same in people.values():
        merged = merge_people(same)
        g.add_node(merged.key, record=merged, kind="person", name=merged.name, known=True,
                   inventories=sorted({p.inventory for p in same}))

    def ensure_person(email: str) -> str:
        """A Person node for an email; one no people source knows is kept, marked ``known=False``."""
        key = person_key(email)
        if key not in g:
            inferred = Person(key=key, source="inferred", inventory="inferred", name=email, email=email.lower(), status="unknown")
            g.add_node(key, record=inferred, kind="person", name=email, known=False, inventories=[])
        return key

    # Accounts -> people (verified email from the API, then the config's login mapping).
    for rec in records:
        if not isinstance(rec, Account) or not rec.is_human:
            # Machine users can still carry an email; that email names an owner, not the account's own human.
            if isinstance(rec, Account) and rec.email:
                p = ensure_person(rec.email)
                g.add_edge(p, rec.key, rel=OWNS, evidence=f"{rec.source} account email {rec.email}", confidence=0.6, role="owner")
            continue
        email, evidence = _account_email(rec, hints)
        if email:
            p = ensure_person(email)
            g.add_edge(p, rec.key, rel=HAS_ACCOUNT, evidence=evidence, confidence=1.0 if "API" in evidence else 0.9)

    for rec in records:
        if isinstance(rec, Resource) and rec.parent_key and rec.parent_key in g:
            g.add_edge(rec.parent_key, rec.key, rel=CONTAINS)
        elif isinstance(rec, Grant) and rec.subject_key in g and rec.resource_key in g:
            g.add_edge(rec.subject_key, rec.resource_key, rel=CAN_ACCESS, level=rec.privilege, scopes=rec.scopes, key=rec.key)
        elif isinstance(rec, Credential) and rec.account_key and rec.account_key in g:
            g.add_edge(rec.key, rec.account_key, rel=AUTHENTICATES_AS)

    # Ownership claims the collectors read from the APIs.
    for rec in records:
        for claim in getattr(rec, "owners", ()):
            owner = _resolve_ref(g, claim.ref, ensure_person)
            if owner:
                g.add_edge(owner, rec.key, rel=OWNS, evidence=claim.evidence, confidence=claim.confidence, role=claim.role)
    for key, email, evidence in hints.ownership:
        if key in g:
            g.add_edge(ensure_person(email), key, rel=OWNS, evidence=evidence, confidence=1.0, role="owner")

    # Contracts: sponsor and what each one covers.
    subjects = [r for r in records if isinstance(r, (Account, Credential))]
    for rec in records:
        if not isinstance(rec, Contract):
            continue
        if rec.sponsor_email:
            g.add_edge(rec.key, ensure_person(rec.sponsor_email), rel=SPONSORED_BY, evidence="contract register sponsor", confidence=1.0)
        for subj in subjects:
            why = _contract_match(g, rec, subj)
            if why:
                g.add_edge(rec.key, subj.key, rel=COVERS, evidence=why, confidence=1.0 if why.startswith("explicit") else 0.8)
    return g


def _account_email(acc: Account, hints: IdentityHints) -> tuple[str | None, str]:
    if acc.email:
        return acc.email.lower(), f"{acc.source} API email of {acc.login or acc.name}"
    mapping = hints.logins.get(acc.source, {})
    if acc.login and acc.login in mapping:
        return mapping[acc.login].lower(), f"config identity mapping {acc.source} login {acc.login}"
    return None, ""


def _resolve_ref(g: nx.MultiDiGraph, ref: str, ensure_person) -> str | None:
    """An ownership ref is an account key (resolved to its human where known) or an email."""
    if "@" in ref and ":" not in ref:
        return ensure_person(ref)
    if ref not in g:
        return None
    return ref  # the account node; owner queries walk on to its person


def _emails_of(g: nx.MultiDiGraph, key: str) -> list[str]:
    """Emails of the people behind a subject: its account's human, its owners."""
    emails = []
    for src, _dst, data in g.in_edges(key, data=True):
        if data["rel"] in (HAS_ACCOUNT, OWNS) and g.nodes[src]["kind"] == "person":
            emails.append(g.nodes[src]["record"].email)
        elif data["rel"] == OWNS and g.nodes[src]["kind"] == "account":
            emails.extend(_emails_of(g, src))
    for _src, dst, data in g.out_edges(key, data=True):
        if data["rel"] == AUTHENTICATES_AS:
            emails.extend(_emails_of(g, dst))
    rec = g.nodes[key]["record"]
    if isinstance(rec, Account) and rec.email:
        emails.append(rec.email.lower())
    return emails


def _contract_match(g: nx.MultiDiGraph, contract: Contract, subj: Record) -> str | None:
    m = contract.match
    if subj.key in m.keys:
        return f"explicit key in contract {contract.contract_id}"
    names = {subj.name}
    if isinstance(subj, Account) and subj.login:
        names.add(subj.login)
    for pattern in m.name_patterns:
        for name in names:
            if name and fnmatch.fnmatch(name.lower(), pattern.lower()):
                return f"name '{name}' matches contract {contract.contract_id} pattern '{pattern}'"
    if m.email_domains:
        for email in _emails_of(g, subj.key):
            domain = email.rsplit("@", 1)[-1]
            if domain in {d.lower() for d in m.email_domains}:
                return f"owner email {email} is in contract {contract.contract_id} domain {domain}"
    return None

"""Rules over the trust graph: which access paths outlived the reason they were granted.

One rule is one function with its metadata beside it (Prowler style): id,
title, severity, OWASP NHI Top 10 id, NIST CSF 2.0 subcategory, remediation
and its tunable thresholds with defaults. A rule is pure: ``(graph, context)
-> findings``; the clock comes in through the context so tests can move time.

A finding's fingerprint is the rule id plus the subject key, hashed: stable
across sweeps, never a timestamp.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator

import networkx as nx

from graph.queries import (
    Owner,
    contract_ended,
    contracts_of,
    covered,
    is_departed,
    owners,
    person_of_account,
    reach,
    record,
    sponsor_of,
    sponsors,
)
from scanner.records import Account, Contract, Credential, Privilege, Record, Status

SEVERITIES = ("critical", "high", "medium", "low", "info")


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    owasp: str
    nist: str
    remediation: str
    params: dict[str, Any]
    check: Callable[["RuleContext"], Iterable[dict[str, Any]]]
    description: str = ""


@dataclass
class RuleContext:
    graph: nx.MultiDiGraph
    now: datetime
    params: dict[str, Any]
    rule: Rule | None = None
    stale_keys: set[str] = field(default_factory=set)

    @property
    def today(self):
        return self.now.date()


RULES: dict[str, Rule] = {}


def rule(*, id: str, title: str, severity: str, owasp: str, nist: str, remediation: str, **params: Any):
    def register(fn: Callable[[RuleContext], Iterable[dict[str, Any]]]) -> Callable:
        RULES[id] = Rule(id, title, severity, owasp, nist, remediation, {"enabled": True, "severity": severity, **params}, fn, (fn.__doc__ or "").strip())
        return fn

    return register


def validate_rule_settings(settings: dict[str, dict[str, Any]]) -> list[str]:
    """Problems in the ``[rules.*]`` tables of the config: unknown rules, keys, or wrong types."""
    problems = []
    for rule_id, values in settings.items():
        r = RULES.get(rule_id)
        if r is None:
            problems.append(f"rules.{rule_id}: unknown rule (known: {', '.join(sorted(RULES))})")
            continue
        if not isinstance(values, dict):
            problems.append(f"rules.{rule_id}: expected a table of thresholds, got {values!r}")
            continue
        for k, v in values.items():
            if k not in r.params:
                problems.append(f"rules.{rule_id}.{k}: unknown threshold (known: {', '.join(sorted(r.params))})")
            elif k == "severity" and v not in SEVERITIES:
                problems.append(f"rules.{rule_id}.severity: expected one of {', '.join(SEVERITIES)}, got {v!r}")
            elif type(r.params[k]) is not type(v) and not (isinstance(r.params[k], float) and isinstance(v, int)):
                problems.append(f"rules.{rule_id}.{k}: expected {type(r.params[k]).__name__}, got {v!r}")
            elif isinstance(v, int) and not isinstance(v, bool) and v < 0:
                problems.append(f"rules.{rule_id}.{k}: expected a value >= 0, got {v!r}")
    return problems


def evaluate(
    g: nx.MultiDiGraph, now: datetime, settings: dict[str, dict[str, Any]] | None = None, stale_keys: set[str] | None = None
) -> list[dict[str, Any]]:
    """Run every enabled rule; findings sorted by severity then rule then subject."""
    settings = settings or {}
    out: dict[str, dict[str, Any]] = {}
    for r in RULES.values():
        params = {**r.params, **settings.get(r.id, {})}
        if not params["enabled"]:
            continue
        ctx = RuleContext(g, now, params, r, stale_keys or set())
        for f in r.check(ctx):
            out[f["fingerprint"]] = f
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(out.values(), key=lambda f: (order[f["severity"]], f["rule_id"], f["subject"]["key"]))


# --- what the rules look at ---------------------------------------------------------

# Credential kinds that stand for an access path someone must own. Actions
# secrets and webhooks live in a repo's settings and are owned by its admins;
# flagging each as "owner missing" would be noise.
ACCOUNTABLE_CREDENTIALS = ("deploy_key", "fine_grained_pat", "classic_pat", "ssh_key", "access_token", "api_token", "client_secret", "access_key")
# Kinds for which the vendor lets the creator choose an expiry (IAM access keys cannot expire:
# for them only rotation counts).
EXPIRABLE = ("fine_grained_pat", "classic_pat", "access_token", "api_token", "client_secret")
NON_HUMAN_ACCOUNTS = ("bot", "app_installation", "service_account", "app")


def is_active(rec: Record, now: datetime) -> bool:
    status = getattr(rec, "status", Status.ACTIVE)
    if status != Status.ACTIVE:
        return False
    expires = getattr(rec, "expires_at", None)
    return expires is None or expires > now


def access_paths(g: nx.MultiDiGraph, now: datetime, *, humans: bool = False) -> Iterator[Record]:
    """Active NHIs: credentials (not plain variables) and non-human accounts.

    With ``humans=True`` also third-party human accounts (outside
    collaborators), which are access paths of a contract too.
    """
    for _key, data in g.nodes(data=True):
        rec = data["record"]
        if isinstance(rec, Credential) and rec.credential_type != "actions_variable" and is_active(rec, now):
            yield rec
        elif isinstance(rec, Account) and is_active(rec, now):
            if (not rec.is_human and rec.account_type in NON_HUMAN_ACCOUNTS) or (humans and rec.is_human and rec.third_party):
                yield rec


def is_known(person) -> bool:
    """Known to a people source (HR, an IdP), not merely an email seen somewhere."""
    return person.source != "inferred"


def subject_type(rec: Record) -> str:
    return getattr(rec, "credential_type", None) or getattr(rec, "account_type", None) or rec.kind


def _days(delta: timedelta) -> int:
    return int(delta.total_seconds() // 86400)


# --- finding assembly -----------------------------------------------------------------


def fingerprint(rule_id: str, subject_key: str) -> str:
    return hashlib.sha256(f"{rule_id}|{subject_key}".encode()).hexdigest()[:20]


def _owner_dict(o: Owner, today) -> dict[str, Any]:
    p = o.person
    return {
        "email": p.email if p else None,
        "name": p.name if p else None,
        "account": o.account_key,
        "status": ("departed" if is_departed(p, today) else p.status) if p else "unresolved",
        "known": bool(p and is_known(p)),
        "statuses": dict(p.statuses) if p else {},
        "manager": p.manager_email if p else None,
        "role": o.role,
        "confidence": round(o.confidence, 2),
        "evidence": list(o.evidence),
    }


def make_finding(ctx: RuleContext, subject: Record, why: str, evidence: Iterable[str] = (), *, severity: str | None = None,
                 extra_inventories: Iterable[str] = ()) -> dict[str, Any]:
    """A finding with everything a person needs to act: owner, sponsor, contract, reach, remedy."""
    g, r = ctx.graph, ctx.rule
    assert r is not None
    today = ctx.today
    own = owners(g, subject.key)
    spons = sponsors(g, subject.key)
    contracts = contracts_of(g, subject.key)
    reaches = reach(g, subject.key)
    inventories = {subject.inventory, *extra_inventories}
    # Listings that enriched the record besides its own (e.g. a Slack app's owner from the install
    # log): if one of them fails later, the finding must stay open rather than resolve.
    inventories.update(getattr(subject, "attributes", {}).get("derived_from", ()))
    for o in own:
        if o.person:
            inventories.update(g.nodes[o.person.key].get("inventories", ()))
        if o.account_key:
            inventories.add(record(g, o.account_key).inventory)
    for c, _ in contracts:
        inventories.add(c.inventory)
    for s in spons:
        if s.person:
            inventories.update(g.nodes[s.person.key].get("inventories", ()))
    inventories.discard("inferred")
    return {
        "fingerprint": fingerprint(r.id, subject.key),
        "rule_id": r.id,
        "title": r.title,
        "severity": severity or ctx.params.get("severity", r.severity),
        "owasp": r.owasp,
        "nist": r.nist,
        "subject": {
            "key": subject.key,
            "name": subject.name,
            "type": subject_type(subject),
            "source": subject.source,
            "url": subject.url,
            "stale": subject.key in ctx.stale_keys,
        },
        "why": why,
        "evidence": list(evidence),
        "owners": [_owner_dict(o, today) for o in own],
        "sponsors": [
            {
                "contract": s.contract.contract_id,
                "email": s.person.email if s.person else s.contract.sponsor_email,
                "status": ("departed" if is_departed(s.person, today) else s.person.status) if s.person else "missing",
                "known": bool(s.person and is_known(s.person)),
                "statuses": dict(s.person.statuses) if s.person else {},
                "manager": s.person.manager_email if s.person else None,
                "evidence": list(s.evidence),
            }
            for s in spons
        ],
        "contracts": [
            {"id": c.contract_id, "counterparty": c.counterparty, "kind": c.contract_type, "end": c.end.isoformat() if c.end else None,
             "status": "ended" if contract_ended(c, today) else c.status, "evidence": ev}
            for c, ev in contracts
        ],
        "reach": [{"key": x.resource_key, "name": x.name, "level": x.level.name.lower(), "path": list(x.path)} for x in reaches[:50]],
        "reach_total": len(reaches),
        "remediation": r.remediation,
        "inventories": sorted(inventories),
    }


# --- the rules ---------------------------------------------------------------------------


@rule(
    id="contract-ended",
    title="Contract ended, access still active",
    severity="critical",
    owasp="NHI1",
    nist="PR.AA-05",
    remediation="Revoke the access path now (remove the key, token, installation or collaborator); "
    "if the relationship continues, renew the contract in the register and attest it.",
)
def contract_ended_access(ctx: RuleContext) -> Iterator[dict[str, Any]]:
    """Anything a contract covers that is still active after the contract ended or was terminated."""
    for subj in access_paths(ctx.graph, ctx.now, humans=True):
        ended = [(c, ev) for c, ev in contracts_of(ctx.graph, subj.key) if contract_ended(c, ctx.today)]
        if not ended:
            continue
        c, ev = ended[0]
        when = f"on {c.end.isoformat()}" if c.end else f"(status {c.status})"
        yield make_finding(
            ctx, subj,
            f"Contract {c.contract_id} with {c.counterparty} ended {when}, but {subject_type(subj)} '{subj.name}' is still active.",
            [ev] + [f"contract {o.contract_id} ended" for o, _ in ended[1:]],
        )


@rule(
    id="credential-outlives-contract",
    title="Credential outlives its contract",
    severity="high",
    owasp="NHI7",
    nist="PR.AA-01",
    remediation="Set the credential's expiry on or before the contract end date, or replace it with one that expires.",
)
def credential_outlives_contract(ctx: RuleContext) -> Iterator[dict[str, Any]]:
    """A credential under a running contract that expires after the contract ends, or never."""
    for subj in access_paths(ctx.graph, ctx.now):
        if not isinstance(subj, Credential):
            continue
        for c, ev in contracts_of(ctx.graph, subj.key):
            if c.end is None or contract_ended(c, ctx.today):
                continue  # open-ended contracts have nothing to outlive; ended ones are contract-ended's
            if subj.expires_at is None:
                why = f"'{subj.name}' never expires, but contract {c.contract_id} ({c.counterparty}) ends on {c.end.isoformat()}."
            elif subj.expires_at.date() > c.end:
                why = (f"'{subj.name}' expires on {subj.expires_at.date().isoformat()}, "
                       f"{(subj.expires_at.date() - c.end).days} days after contract {c.contract_id} ends on {c.end.isoformat()}.")
            else:
                continue
            yield make_finding(ctx, subj, why, [ev])
            break


@rule(
    id="contract-ending-soon",
    title="Contract ends soon and still has active access",
    severity="medium",
    owasp="NHI1",
    nist="PR.AA-05",
    remediation="Ask the sponsor to renew and attest the contract, or plan the revocation of every access path listed before the end date.",
    days=30,
)
def contract_ending_soon(ctx: RuleContext) -> Iterator[dict[str, Any]]:
    """A contract ending within N days that still has active access paths (one finding per contract)."""
    horizon = ctx.today + timedelta(days=ctx.params["days"])
    for _key, data in ctx.graph.nodes(data=True):
        c = data["record"]
        if not isinstance(c, Contract) or c.end is None or contract_ended(c, ctx.today) or c.end > horizon:
            continue
        live = [(k, ev) for k, ev in covered(ctx.graph, c.key) if is_active(record(ctx.graph, k), ctx.now)]
        if not live:
            continue
        days_left = (c.end - ctx.today).days
        evidence = [f"{record(ctx.graph, k).name} ({subject_type(record(ctx.graph, k))}): {ev}" for k, ev in live]
        f = make_finding(ctx, c, f"Contract {c.contract_id} with {c.counterparty} ends in {days_left} days ({c.end.isoformat()}) "
                         f"and still has {len(live)} active access path(s).", evidence,
                         extra_inventories=[record(ctx.graph, k).inventory for k, _ in live])
        sponsor = sponsor_of(ctx.graph, c.key)
        if sponsor:
            f["sponsors"] = [{"contract": c.contract_id, "email": sponsor.email, "status": sponsor.status,
                              "known": is_known(sponsor), "statuses": dict(sponsor.statuses), "manager": sponsor.manager_email,
                              "evidence": ["contract register sponsor"]}]
        yield f


@rule(
    id="owner-missing",
    title="No accountable owner or sponsor",
    severity="medium",
    owasp="NHI1",
    nist="PR.AA-01",
    remediation="Name an owner: map the account to a person in the config ([identity] or [[ownership]]), "
    "or cover it by a contract with a sponsor; revoke it if nobody claims it.",
)
def owner_missing(ctx: RuleContext) -> Iterator[dict[str, Any]]:
    """An NHI for which no accountable human resolves: no owner person, no contract sponsor in HR.

    When a people source (HR export, Okta, Entra) is loaded, a person none of them
    lists (an outside contributor's email, a sponsor address with a typo) is not accountable.
    """
    people_loaded = any(d["kind"] == "person" and d.get("known") for _k, d in ctx.graph.nodes(data=True))

    def accountable(p) -> bool:
        return p is not None and (is_known(p) or not people_loaded)

    for subj in access_paths(ctx.graph, ctx.now):
        if isinstance(subj, Credential) and subj.credential_type not in ACCOUNTABLE_CREDENTIALS:
            continue
        own = owners(ctx.graph, subj.key)
        spons = sponsors(ctx.graph, subj.key)
        if any(accountable(o.person) for o in own) or any(accountable(s.person) for s in spons):
            continue
        evidence = []
        for o in own:
            if o.person:
                evidence.append(f"owner {o.person.email} is not known to any people source ({' -> '.join(o.evidence)})")
            else:
                evidence.append(f"owner account {o.label} has no known person ({' -> '.join(o.evidence)})")
        for s in spons:
            if s.contract.sponsor_email is None:
                evidence.append(f"contract {s.contract.contract_id} has no sponsor")
            else:
                evidence.append(f"contract {s.contract.contract_id} sponsor {s.contract.sponsor_email} is not known to any people source")
        if own or spons:
            why = f"No accountable person resolves for {subject_type(subj)} '{subj.name}'."
        else:
            why = f"No owner or contract sponsor is recorded for {subject_type(subj)} '{subj.name}'."
        yield make_finding(ctx, subj, why, evidence)


@rule(
    id="owner-departed",
    title="Owner or sponsor has departed",
    severity="high",
    owasp="NHI1",
    nist="PR.AA-05",
    remediation="Transfer ownership to a current employee (re-issue the credential under their name) or revoke it; "
    "for a contract, name a new sponsor in the register.",
)
def owner_departed(ctx: RuleContext) -> Iterator[dict[str, Any]]:
    """The owner or sponsor of an active NHI has left per HR, and nobody current owns it."""
    for subj in access_paths(ctx.graph, ctx.now):
        own = [o for o in owners(ctx.graph, subj.key) if o.person]
        spons = [s for s in sponsors(ctx.graph, subj.key) if s.person]
        gone_owners = [o for o in own if is_departed(o.person, ctx.today)]
        gone_sponsors = [s for s in spons if is_departed(s.person, ctx.today)]
        if not (gone_owners or gone_sponsors):
            continue
        reasons = [f"owner {o.person.email} departed" + (f" on {o.person.end_date.isoformat()}" if o.person.end_date else "") for o in gone_owners]
        reasons += [f"contract {s.contract.contract_id} sponsor {s.person.email} departed" for s in gone_sponsors]
        evidence = [" -> ".join(o.evidence) for o in gone_owners] + [" -> ".join(s.evidence) for s in gone_sponsors]
        yield make_finding(ctx, subj, f"{subject_type(subj)} '{subj.name}' is still active but its " + "; ".join(reasons) + ".", evidence)


@rule(
    id="departed-person-active-account",
    title="Departed person still has an active account",
    severity="high",
    owasp="NHI1",
    nist="PR.AA-05",
    remediation="Deactivate or remove the account in that system and revoke its tokens and keys; "
    "then find out why deprovisioning from the IdP or HR did not reach it (no SCIM, a local account).",
)
def departed_person_active_account(ctx: RuleContext) -> Iterator[dict[str, Any]]:
    """The exit left a live account behind: a person gone per HR or the IdP, still active in a tenant."""
    for key, data in ctx.graph.nodes(data=True):
        acc = data["record"]
        if not isinstance(acc, Account) or not acc.is_human or not is_active(acc, ctx.now):
            continue
        holder = person_of_account(ctx.graph, key)
        if holder is None or not is_departed(holder[0], ctx.today):
            continue
        person, evidence = holder
        if person.statuses.get(acc.source) == "departed":
            continue  # that people source already says so; an IdP still calling them active is the gap itself
        said = ", ".join(f"{status} per {src}" for src, status in sorted(person.statuses.items()))
        yield make_finding(
            ctx, acc,
            f"{person.email} has departed ({said}), but their {acc.source} account '{acc.login or acc.name}' is still active.",
            [evidence],
        )


@rule(
    id="excessive-privilege",
    title="Privilege exceeds what an NHI should hold",
    severity="high",
    owasp="NHI5",
    nist="PR.AA-05",
    remediation="Reduce the permission to what the integration needs (read-only deploy key, narrower App permissions, "
    "selected repositories, repo-level secret), or split it.",
    min_level="admin",
    flag_write_deploy_keys=True,
    flag_org_wide_secrets=True,
    third_party_severity="critical",
)
def excessive_privilege(ctx: RuleContext) -> Iterator[dict[str, Any]]:
    """Admin/owner-level NHIs, write deploy keys, org-wide secrets; third-party holders weigh more."""
    threshold = Privilege.parse(ctx.params["min_level"])
    for subj in access_paths(ctx.graph, ctx.now):
        why = None
        level = getattr(subj, "privilege", Privilege.READ)
        stype = subject_type(subj)
        if stype == "deploy_key" and level >= Privilege.WRITE and ctx.params["flag_write_deploy_keys"]:
            why = f"Deploy key '{subj.name}' can push (write access), not read-only."
        elif stype == "actions_secret" and subj.attributes.get("level") == "org" and subj.attributes.get("visibility") in ("all", "private") \
                and ctx.params["flag_org_wide_secrets"]:
            why = f"Organization secret '{subj.name}' is visible to {subj.attributes.get('visibility')} repositories."
        elif level >= threshold and stype not in ("actions_secret", "webhook"):
            perms = subj.attributes.get("permissions") if hasattr(subj, "attributes") else None
            detail = f" ({', '.join(subj.scopes)})" if getattr(subj, "scopes", ()) else (f" ({_fmt_perms(perms)})" if perms else "")
            why = f"{stype} '{subj.name}' holds {level.name.lower()}-level privilege{detail}."
        if not why:
            continue
        third = bool(contracts_of(ctx.graph, subj.key)) or getattr(subj, "third_party", False)
        sev = ctx.params["third_party_severity"] if third else None
        yield make_finding(ctx, subj, why + (" It is held by a third party." if third else ""), [], severity=sev)


def _fmt_perms(perms: Any) -> str:
    if isinstance(perms, dict):
        flat = []
        for k, v in sorted(perms.items()):
            if isinstance(v, dict):
                flat += [f"{k}.{kk}:{vv}" for kk, vv in sorted(v.items())]
            else:
                flat.append(f"{k}:{v}")
        return ", ".join(flat)
    return str(perms)


@rule(
    id="dormant",
    title="Dormant NHI still valid",
    severity="medium",
    owasp="NHI1",
    nist="PR.AA-05",
    remediation="Revoke the unused credential; if it is still needed, confirm with its owner and set an expiry.",
    days=90,
)
def dormant(ctx: RuleContext) -> Iterator[dict[str, Any]]:
    """Not used for N days (or never used and older than N days), and still valid."""
    cutoff = ctx.now - timedelta(days=ctx.params["days"])
    for subj in access_paths(ctx.graph, ctx.now):
        if isinstance(subj, Credential):
            if not subj.usage_tracked:
                continue
            last, created = subj.last_used_at, subj.created_at
        else:
            last, created = subj.last_active_at, subj.created_at
            if last is None:
                continue  # the API gave no activity for this account; absence is not dormancy
        if last is not None and last < cutoff:
            yield make_finding(ctx, subj, f"'{subj.name}' was last used {last.date().isoformat()}, {_days(ctx.now - last)} days ago "
                               f"(threshold {ctx.params['days']}).", [f"last used: {last.isoformat()}"])
        elif last is None and created is not None and created < cutoff:
            yield make_finding(ctx, subj, f"'{subj.name}' has never been used since it was created {_days(ctx.now - created)} days ago.",
                               [f"created: {created.isoformat()}", "last used: never"])


@rule(
    id="long-lived-credential",
    title="Long-lived, never-expiring or unrotated credential",
    severity="medium",
    owasp="NHI7",
    nist="PR.AA-01",
    remediation="Rotate the credential and give it an expiry (at most the configured lifetime); prefer short-lived tokens "
    "(GitHub App installation tokens, OIDC) over static secrets.",
    max_lifetime_days=366,
    rotation_days=365,
)
def long_lived(ctx: RuleContext) -> Iterator[dict[str, Any]]:
    """Never expires (where the vendor allows an expiry), lives longer than allowed, or not rotated for N days."""
    for subj in access_paths(ctx.graph, ctx.now):
        if not isinstance(subj, Credential) or subj.credential_type == "webhook":
            continue
        reasons = []
        if subj.credential_type in EXPIRABLE and subj.expires_at is None:
            reasons.append("never expires")
        elif subj.expires_at and subj.created_at and _days(subj.expires_at - subj.created_at) > ctx.params["max_lifetime_days"]:
            reasons.append(f"lifetime of {_days(subj.expires_at - subj.created_at)} days exceeds {ctx.params['max_lifetime_days']}")
        rotated = subj.rotated_at or subj.created_at
        if rotated and _days(ctx.now - rotated) > ctx.params["rotation_days"]:
            reasons.append(f"not rotated for {_days(ctx.now - rotated)} days (since {rotated.date().isoformat()})")
        if reasons:
            yield make_finding(ctx, subj, f"{subject_type(subj)} '{subj.name}': " + "; ".join(reasons) + ".",
                               [f"created: {subj.created_at.isoformat() if subj.created_at else 'unknown'}",
                                f"expires: {subj.expires_at.isoformat() if subj.expires_at else 'never'}"])


# --- leaked secrets: exposures from the secret engine (detectors/secrets) ------------------

from scanner.records import Exposure  # noqa: E402 - the secret rules' section keeps its own imports

# detect-secrets' heuristic types: a high-entropy string or a "password = ..." is often a test
# value, so alone they rank below a token whose format names its vendor.
GENERIC_SECRET_TYPES = ("Secret Keyword", "Base64 High Entropy String", "Hex High Entropy String", "Public IP (ipv4)")
_VARIABLE_TYPES = ("actions_variable", "ci_variable")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def exposures(g: nx.MultiDiGraph) -> list[Exposure]:
    return sorted((d["record"] for _k, d in g.nodes(data=True) if isinstance(d["record"], Exposure)), key=lambda e: e.key)


def credential_identities(cred: Credential) -> list[str]:
    """What the inventory knows that identifies a credential, in the form exposures carry."""
    out = []
    if cred.value_hmac and cred.credential_type not in _VARIABLE_TYPES:
        out.append(f"value_hmac:{cred.value_hmac}")
    attrs = cred.attributes or {}
    if attrs.get("last_eight_hmac"):
        out.append(f"last_eight_hmac:{attrs['last_eight_hmac']}")
    if attrs.get("access_key_id"):
        out.append("aws_access_key_id_sha256:" + _sha256(str(attrs["access_key_id"])))
    return out


def linked_credential(g: nx.MultiDiGraph, exposure: Exposure, index: dict[str, str]) -> Credential | None:
    """The inventory credential a leaked value is, when the inventory can tell."""
    if exposure.credential_key and exposure.credential_key in g:
        rec = g.nodes[exposure.credential_key]["record"]
        if isinstance(rec, Credential):
            return rec
    for identity in (f"value_hmac:{exposure.secret_hmac}", *exposure.identities):
        key = index.get(identity)
        if key is not None:
            return g.nodes[key]["record"]
    return None


def _identity_index(g: nx.MultiDiGraph) -> dict[str, str]:
    index: dict[str, str] = {}
    for key, data in sorted(g.nodes(data=True), key=lambda item: item[0]):
        rec = data["record"]
        if isinstance(rec, Credential):
            for identity in credential_identities(rec):
                index.setdefault(identity, key)
    return index


@rule(
    id="secret-exposed",
    title="Secret exposed in code, history or a ticket",
    severity="high",
    owasp="NHI2",
    nist="PR.AA-01",
    remediation="Revoke or rotate the credential first (removing it from the file does not un-leak it: history and "
    "clones keep it), then remove it from the code and its history, and move it to a secret manager.",
    generic_severity="medium",
)
def secret_exposed(ctx: RuleContext) -> Iterator[dict[str, Any]]:
    """A secret seen in a repository (history included), a CI variable or a ticket.

    When the inventory knows the credential (an AWS access key id, a GitHub token's last
    eight characters, the same value), the leak and the live credential are one finding,
    critical while the credential is active; unlinked leaks are one finding per place.
    """
    g = ctx.graph
    index = _identity_index(g)
    linked: dict[str, list[Exposure]] = {}
    for exp in exposures(g):
        cred = linked_credential(g, exp, index)
        if cred is not None:
            linked.setdefault(cred.key, []).append(exp)
            continue
        generic = exp.secret_type in GENERIC_SECRET_TYPES
        severity = ctx.params["generic_severity"] if generic else None
        article = "An" if exp.secret_type[:1].upper() in "AEIOU" else "A"
        why = f"{article} {exp.secret_type} ({exp.preview}) is in {exp.location}."
        evidence = [f"location: {exp.location}", f"type: {exp.secret_type}", f"preview: {exp.preview}"]
        live = getattr(exp, "live", None)
        if live is True:
            severity, why = "critical", why + f" It works: {exp.verified_by}'s API accepted it."
            evidence.append(f"verified live against {exp.verified_by} (opt-in check)")
        elif live is False:
            severity, why = "low", why + f" {exp.verified_by}'s API no longer accepts it."
            evidence.append(f"refused by {exp.verified_by} (opt-in check)")
        yield make_finding(ctx, exp, why, evidence, severity=severity)
    for cred_key, leaks in sorted(linked.items()):
        cred = g.nodes[cred_key]["record"]
        active = is_active(cred, ctx.now)
        places = ", ".join(e.location for e in leaks[:5]) + (f" and {len(leaks) - 5} more" if len(leaks) > 5 else "")
        state = "is active" if active else f"is {getattr(cred.status, 'value', cred.status)}"
        yield make_finding(
            ctx, cred, f"{subject_type(cred)} '{cred.name}' {state} and is also exposed in {places}.",
            [f"exposed: {e.location} ({e.secret_type}, {e.preview})" for e in leaks]
            + [f"linked by: {_link_reason(e, cred, index)}" for e in leaks[:1]],
            severity="critical" if active else "low",
            extra_inventories=[e.inventory for e in leaks],
        )


def _link_reason(exp: Exposure, cred: Credential, index: dict[str, str]) -> str:
    if exp.credential_key == cred.key:
        return "found in the credential's own value"
    for identity in (f"value_hmac:{exp.secret_hmac}", *exp.identities):
        if index.get(identity) == cred.key:
            return {"value_hmac": "the same value (keyed hash)", "last_eight_hmac": "the token's last eight characters "
                    "(keyed hash) as the credential-authorizations API shows them",
                    "aws_access_key_id_sha256": "the AWS access key id"}.get(identity.split(":")[0], identity.split(":")[0])
    return "inventory identity"


def _place(exp: Exposure) -> str:
    """Where a value sits, history aside: a repository's file (any commit), a variable, a ticket."""
    if "@" in exp.location:
        repo, rest = exp.location.split("@", 1)
        parts = rest.split(":")
        return f"{repo}:{parts[1]}" if len(parts) > 1 else repo
    return exp.location


@rule(
    id="secret-reused",
    title="Same secret in several places",
    severity="high",
    owasp="NHI9",
    nist="PR.AA-01",
    remediation="Give each environment, service and repository its own credential, so one leak or revocation does not "
    "spread; rotate the shared value everywhere it appears.",
    min_places=2,
)
def secret_reused(ctx: RuleContext) -> Iterator[dict[str, Any]]:
    """One value (same keyed hash) in several places: files of different repositories or paths,
    CI variables of different projects or environments (OWASP NHI9 reuse, NHI8 isolation)."""
    g = ctx.graph
    places: dict[str, dict[str, Record]] = {}
    for exp in exposures(g):
        places.setdefault(exp.secret_hmac, {}).setdefault(_place(exp), exp)
    # A credential whose value the API returned counts as a place of that value too; a plain
    # variable counts only through its own exposure (a region name in two variables is no secret).
    for key, data in sorted(g.nodes(data=True), key=lambda item: item[0]):
        rec = data["record"]
        if isinstance(rec, Credential) and rec.value_hmac and rec.credential_type not in _VARIABLE_TYPES:
            places.setdefault(rec.value_hmac, {}).setdefault(rec.key, rec)
    for secret_hmac, where in sorted(places.items()):
        if len(where) < ctx.params["min_places"]:
            continue
        subjects = [where[p] for p in sorted(where)]
        subject = subjects[0]
        finding = make_finding(
            ctx, subject, f"The same secret value is in {len(where)} places: " + ", ".join(sorted(where)[:6])
            + (" ..." if len(where) > 6 else "") + ".",
            [f"{'exposure' if isinstance(r, Exposure) else subject_type(r)}: {p}" for p, r in sorted(where.items(), key=lambda x: x[0])],
            extra_inventories=[r.inventory for r in subjects],
        )
        # One finding per value, whichever place is listed first: stable while the value lives.
        finding["fingerprint"] = fingerprint("secret-reused", f"secret:{secret_hmac[:32]}")
        yield finding

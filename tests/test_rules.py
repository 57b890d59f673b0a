"""Unit tests of the graph and the rules on hand-built records (no I/O)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from detectors.rules import RULES, evaluate, fingerprint, validate_rule_settings
from graph.build import IdentityHints, build_graph
from graph.queries import owners, reach
from scanner.records import (
    Account,
    Contract,
    Credential,
    Grant,
    MatchRules,
    Ownership,
    Person,
    Privilege,
    Resource,
    Status,
)

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
TODAY = NOW.date()


def ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def person(email, status="active", **kw):
    return Person(key=f"hr:person:{email}", source="hr", inventory="hr:people", name=email, email=email, status=status, **kw)


def user(login, email=None, **kw):
    kw.setdefault("account_type", "user")
    kw.setdefault("is_human", True)
    return Account(key=f"github:user:{login}", source="github", inventory="github:acme:members", name=login, login=login, email=email, **kw)


def contract(cid, *, end, status="active", sponsor="bob@acme.example", **match):
    return Contract(key=f"contracts:contract:{cid}", source="contracts", inventory="contracts:register", name=cid, contract_id=cid,
                    counterparty=cid.title(), contract_type="vendor", start=date(2024, 1, 1), end=end, status=status,
                    sponsor_email=sponsor, match=MatchRules(**match))


def deploy_key(name, *, added_by, write=False, last_used=5, created=30, repo="api"):
    return Credential(key=f"github:deploy_key:acme/{repo}/{name}", source="github", inventory=f"github:acme/{repo}:deploy_keys", name=name,
                      credential_type="deploy_key", privilege=Privilege.WRITE if write else Privilege.READ,
                      created_at=ago(created), last_used_at=ago(last_used) if last_used is not None else None,
                      owners=(Ownership(ref=f"github:user:{added_by}", evidence="deploy key added_by (GitHub API)", role="creator"),))


ORG = Resource(key="github:org:acme", source="github", inventory="github:acme:repos", name="acme", resource_type="org")
REPO = Resource(key="github:repo:acme/api", source="github", inventory="github:acme:repos", name="acme/api", resource_type="repo", parent_key=ORG.key)


def grant(subject, resource, level=Privilege.READ):
    return Grant(key=f"github:grant:{subject.key}->{resource.key}", source="github", inventory=subject.inventory, name="g",
                 subject_key=subject.key, resource_key=resource.key, privilege=level)


def run(records, now=NOW, settings=None, hints=None):
    g = build_graph(records, hints)
    return {(f["rule_id"], f["subject"]["key"]): f for f in evaluate(g, now, settings or {})}


def test_healthy_key_is_not_flagged():
    alice = user("alice", "alice@acme.example")
    key = deploy_key("docs", added_by="alice")
    found = run([person("alice@acme.example"), alice, ORG, REPO, key, grant(key, REPO)])
    assert found == {}


def test_departed_creator_is_found_through_the_evidence_chain():
    eve = user("eve", "eve@acme.example")
    key = deploy_key("backup", added_by="eve")
    found = run([person("eve@acme.example", status="departed", end_date=date(2026, 3, 1)), eve, key])
    f = found[("owner-departed", key.key)]
    assert f["owners"][0]["email"] == "eve@acme.example"
    assert f["owners"][0]["status"] == "departed"
    # Why we believe eve owns it: the API's added_by, then her verified email.
    assert f["owners"][0]["evidence"] == ["deploy key added_by (GitHub API): eve", "github API email of eve"]
    assert "departed on 2026-03-01" in f["why"]


def test_owner_missing_when_login_has_no_person_and_mapping_fixes_it():
    ghost = user("ghost")  # no public email
    key = deploy_key("mystery", added_by="ghost")
    found = run([ghost, key])
    assert ("owner-missing", key.key) in found
    hints = IdentityHints(logins={"github": {"ghost": "ghost@acme.example"}})
    found = run([ghost, key, person("ghost@acme.example")], hints=hints)
    assert ("owner-missing", key.key) not in found


def test_contract_ended_covers_by_domain_and_credential_of_that_account():
    vendor = user("globex-dev", "dev@globex.example", third_party=True, role="outside_collaborator")
    pat = Credential(key="github:fine_grained_pat:acme/1", source="github", inventory="github:acme:pat_grants", name="sync",
                     credential_type="fine_grained_pat", account_key=vendor.key, created_at=ago(10), last_used_at=ago(1),
                     expires_at=NOW + timedelta(days=30))
    c = contract("globex", end=TODAY - timedelta(days=60), status="ended", email_domains=("globex.example",))
    found = run([person("bob@acme.example"), vendor, pat, c])
    assert ("contract-ended", vendor.key) in found
    f = found[("contract-ended", pat.key)]
    assert f["severity"] == "critical"
    assert f["contracts"][0]["id"] == "globex" and "globex.example" in f["contracts"][0]["evidence"]
    assert f["sponsors"][0]["email"] == "bob@acme.example"


def test_expired_or_revoked_credentials_are_not_access_paths():
    c = contract("globex", end=TODAY - timedelta(days=1), name_patterns=("globex-*",))
    expired = Credential(key="github:fine_grained_pat:acme/2", source="github", inventory="i", name="globex-old",
                         credential_type="fine_grained_pat", expires_at=ago(1), created_at=ago(100))
    revoked = Credential(key="github:fine_grained_pat:acme/3", source="github", inventory="i", name="globex-rev",
                         credential_type="fine_grained_pat", status=Status.REVOKED, created_at=ago(100))
    assert run([c, expired, revoked]) == {}


def test_credential_outlives_running_contract():
    c = contract("initech", end=TODAY + timedelta(days=100), name_patterns=("initech-*",))
    never = Credential(key="k1", source="github", inventory="i", name="initech-never", credential_type="fine_grained_pat",
                       created_at=ago(5), last_used_at=ago(1))
    later = Credential(key="k2", source="github", inventory="i", name="initech-later", credential_type="fine_grained_pat",
                       created_at=ago(5), last_used_at=ago(1), expires_at=NOW + timedelta(days=300))
    inside = Credential(key="k3", source="github", inventory="i", name="initech-inside", credential_type="fine_grained_pat",
                        created_at=ago(5), last_used_at=ago(1), expires_at=NOW + timedelta(days=50))
    found = run([person("bob@acme.example"), c, never, later, inside])
    assert "never expires" in found[("credential-outlives-contract", "k1")]["why"]
    assert "200 days after" in found[("credential-outlives-contract", "k2")]["why"]
    assert ("credential-outlives-contract", "k3") not in found


def test_contract_ending_soon_is_one_finding_per_contract_with_its_paths():
    c = contract("initech", end=TODAY + timedelta(days=20), name_patterns=("initech-*",))
    a = Credential(key="k1", source="github", inventory="i", name="initech-a", credential_type="deploy_key", created_at=ago(5), last_used_at=ago(1))
    b = Credential(key="k2", source="github", inventory="i", name="initech-b", credential_type="deploy_key", created_at=ago(5), last_used_at=ago(1))
    found = run([person("bob@acme.example"), c, a, b])
    f = found[("contract-ending-soon", c.key)]
    assert "ends in 20 days" in f["why"] and "2 active access path(s)" in f["why"]
    assert len(f["evidence"]) == 2
    # The threshold comes from config.
    assert ("contract-ending-soon", c.key) not in run([person("bob@acme.example"), c, a, b], settings={"contract-ending-soon": {"days": 10}})


def test_sponsor_departed_and_sponsor_missing():
    app = Account(key="github:installation:acme/1", source="github", inventory="github:acme:installations", name="hooli-monitor",
                  login="hooli-monitor", account_type="app_installation", is_human=False, created_at=ago(50))
    gone = contract("hooli", end=TODAY + timedelta(days=300), sponsor="dave@acme.example", name_patterns=("hooli-*",))
    found = run([person("dave@acme.example", status="departed"), app, gone])
    f = found[("owner-departed", app.key)]
    assert "sponsor dave@acme.example departed" in f["why"]
    nobody = contract("hooli", end=TODAY + timedelta(days=300), sponsor=None, name_patterns=("hooli-*",))
    found = run([app, nobody])
    assert "contract hooli has no sponsor" in found[("owner-missing", app.key)]["evidence"]


def test_excessive_privilege_weighs_third_parties_more():
    admin_app = Account(key="a1", source="github", inventory="i", name="ci", account_type="app_installation", is_human=False,
                        privilege=Privilege.ADMIN, attributes={"permissions": {"administration": "write"}})
    vendor_app = Account(key="a2", source="github", inventory="i", name="globex-ci", account_type="app_installation", is_human=False,
                         privilege=Privilege.ADMIN)
    c = contract("globex", end=TODAY + timedelta(days=365), name_patterns=("globex-*",))
    write_key = deploy_key("push", added_by="alice", write=True)
    org_secret = Credential(key="s1", source="github", inventory="i", name="NPM_TOKEN", credential_type="actions_secret",
                            usage_tracked=False, created_at=ago(10), attributes={"level": "org", "visibility": "all"})
    repo_secret = Credential(key="s2", source="github", inventory="i", name="X", credential_type="actions_secret",
                             usage_tracked=False, created_at=ago(10), attributes={"level": "repo"})
    found = run([person("bob@acme.example"), person("alice@acme.example"), user("alice", "alice@acme.example"), admin_app, vendor_app, c, write_key, org_secret, repo_secret])
    assert found[("excessive-privilege", "a1")]["severity"] == "high"
    assert "administration:write" in found[("excessive-privilege", "a1")]["why"]
    assert found[("excessive-privilege", "a2")]["severity"] == "critical"
    assert ("excessive-privilege", write_key.key) in found
    assert ("excessive-privilege", "s1") in found
    assert ("excessive-privilege", "s2") not in found


def test_dormant_and_never_used():
    alice = user("alice", "alice@acme.example")
    old = deploy_key("old", added_by="alice", last_used=200, created=400)
    never = deploy_key("never", added_by="alice", last_used=None, created=120)
    fresh_never = deploy_key("fresh", added_by="alice", last_used=None, created=10)
    found = run([person("alice@acme.example"), alice, old, never, fresh_never])
    assert "200 days ago" in found[("dormant", old.key)]["why"]
    assert "never been used" in found[("dormant", never.key)]["why"]
    assert ("dormant", fresh_never.key) not in found
    # Kinds whose use the vendor does not report are never called dormant.
    secret = Credential(key="s", source="github", inventory="i", name="S", credential_type="actions_secret", usage_tracked=False, created_at=ago(400))
    assert ("dormant", "s") not in run([secret])


def test_long_lived():
    pat = Credential(key="p", source="github", inventory="i", name="release", credential_type="fine_grained_pat", created_at=ago(10), last_used_at=ago(1))
    secret = Credential(key="s", source="github", inventory="i", name="S", credential_type="actions_secret", usage_tracked=False,
                        created_at=ago(800), rotated_at=ago(500))
    found = run([pat, secret])
    assert "never expires" in found[("long-lived-credential", "p")]["why"]
    assert "not rotated for 500 days" in found[("long-lived-credential", "s")]["why"]


def test_fingerprints_are_stable_and_time_free():
    key = deploy_key("old", added_by="ghost", last_used=200, created=400)
    a = run([key], now=NOW)
    b = run([key], now=NOW + timedelta(days=3))
    assert {f["fingerprint"] for f in a.values()} == {f["fingerprint"] for f in b.values()}
    assert a[("dormant", key.key)]["fingerprint"] == fingerprint("dormant", key.key)


def test_reach_follows_grants_then_containment():
    org_key = Credential(key="c", source="github", inventory="i", name="x", credential_type="classic_pat", account_key="github:user:bot")
    bot = user("bot", account_type="bot", is_human=False)
    g = build_graph([ORG, REPO, bot, org_key, grant(bot, ORG, Privilege.ADMIN)])
    got = {r.resource_key: r for r in reach(g, "c")}
    # A classic PAT has no grants of its own: it acts as its account.
    assert got["github:org:acme"].level == Privilege.ADMIN
    assert got["github:repo:acme/api"].path == ("c", "github:user:bot", "github:org:acme", "github:repo:acme/api")


def test_owner_of_pat_is_its_account_holder():
    frank = user("frank", "frank@acme.example")
    pat = Credential(key="p", source="github", inventory="i", name="release", credential_type="fine_grained_pat", account_key=frank.key,
                     owners=(Ownership(ref=frank.key, evidence="fine-grained PAT owner (GitHub API)", confidence=1.0),))
    g = build_graph([person("frank@acme.example"), frank, pat])
    (o,) = owners(g, "p")
    assert o.person.email == "frank@acme.example" and o.role == "owner"


@pytest.mark.parametrize(
    "settings, fragment",
    [
        ({"nope": {}}, "rules.nope: unknown rule"),
        ({"dormant": {"dayz": 3}}, "rules.dormant.dayz: unknown threshold"),
        ({"dormant": {"days": "90"}}, "rules.dormant.days: expected int, got '90'"),
        ({"dormant": {"days": -1}}, "expected a value >= 0"),
        ({"dormant": {"severity": "urgent"}}, "rules.dormant.severity: expected one of"),
    ],
)
def test_rule_settings_are_validated(settings, fragment):
    problems = validate_rule_settings(settings)
    assert any(fragment in p for p in problems), problems


def test_every_rule_has_its_metadata():
    for r in RULES.values():
        assert r.owasp.startswith("NHI") and r.nist.startswith("PR.AA-")
        assert r.severity in ("critical", "high", "medium", "low", "info")
        assert r.remediation and r.description


def test_sponsor_not_in_hr_is_not_accountable_once_hr_is_loaded():
    app = Account(key="a", source="github", inventory="i", name="umbrella-sync", login="umbrella-sync", account_type="bot", is_human=False)
    c = contract("umbrella", end=TODAY + timedelta(days=200), sponsor="ghost@acme.example", name_patterns=("umbrella-*",))
    found = run([person("alice@acme.example"), app, c])
    assert found[("owner-missing", "a")]["evidence"] == ["contract umbrella sponsor ghost@acme.example is not known to any people source"]
    # Without any HR data, the sponsor's email is the best we have: not flagged.
    assert ("owner-missing", "a") not in run([app, c])


def test_people_sources_merge_by_email_and_the_most_severe_status_wins():
    hr = person("ivan@acme.example")
    okta = Person(key="okta:person:ivan@acme.example", source="okta", inventory="okta:org:users", name="Ivan", email="Ivan@acme.example",
                  status="departed")
    ivan = user("ivan", "ivan@acme.example")
    key = deploy_key("k", added_by="ivan")
    found = run([hr, okta, ivan, key])
    f = found[("owner-departed", key.key)]
    assert f["owners"][0]["status"] == "departed"
    # Where the sources disagree, the finding shows both.
    assert f["owners"][0]["statuses"] == {"hr": "active", "okta": "departed"}
    # And both people inventories are what the finding depends on.
    assert {"hr:people", "okta:org:users"} <= set(f["inventories"])


def test_departed_person_with_active_saas_account():
    gone = person("eve@acme.example", status="departed")
    eve_gh = user("eve", "eve@acme.example")
    eve_slack = Account(key="slack:user:U1", source="slack", inventory="slack:T1:users", name="eve", login="eve",
                        email="eve@acme.example", account_type="user", is_human=True)
    suspended = Account(key="slack:user:U2", source="slack", inventory="slack:T1:users", name="old", login="old",
                        email="eve@acme.example", account_type="user", is_human=True, status=Status.SUSPENDED)
    found = run([gone, eve_gh, eve_slack, suspended])
    assert "departed (departed per hr)" in found[("departed-person-active-account", eve_gh.key)]["why"]
    assert ("departed-person-active-account", eve_slack.key) in found
    assert ("departed-person-active-account", suspended.key) not in found
    # Active people's accounts are quiet.
    assert run([person("eve@acme.example"), eve_gh]) == {}

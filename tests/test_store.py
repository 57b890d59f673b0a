"""The store's snapshot and diff semantics, on a real SQLite file."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from detectors.rules import evaluate
from graph.build import build_graph
from scanner.records import CollectResult, Credential, InventoryStatus, Privilege
from scanner.store import Store, load_or_create_key

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
INV = "github:acme/api:deploy_keys"


def key(name: str, inventory: str = INV) -> Credential:
    # Write access and 400 days without use: fires dormant, excessive-privilege, owner-missing.
    return Credential(key=f"github:deploy_key:acme/api/{name}", source="github", inventory=inventory, name=name,
                      credential_type="deploy_key", privilege=Privilege.WRITE, created_at=NOW - timedelta(days=500),
                      last_used_at=NOW - timedelta(days=400))


def ok(records, inventory=INV, scopes=()):
    return CollectResult(source="github", records=list(records),
                         coverage=[InventoryStatus(source="github", inventory=inventory, ok=True, count=len(records))],
                         complete_scopes=list(scopes))


def failed(inventory=INV):
    return CollectResult(source="github", coverage=[InventoryStatus(source="github", inventory=inventory, ok=False, reason="HTTP 500")])


def sweep(store: Store, results, now=NOW):
    sid = store.begin_sweep(now)
    snap = store.build_snapshot(results)
    findings = evaluate(build_graph(snap.records), now, {}, snap.stale_keys)
    changes = store.diff_findings(findings, snap)
    store.commit_sweep(sid, snap, changes, {})
    return snap, {(c.finding["rule_id"], c.finding["subject"]["name"]): c.change for c in changes}


def test_lifecycle_new_open_resolved_regressed(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/s.db")
    _, ch = sweep(store, [ok([key("a"), key("b")])])
    assert ch[("dormant", "a")] == "new" and ch[("dormant", "b")] == "new"

    _, ch = sweep(store, [ok([key("a"), key("b")])])
    assert set(ch.values()) == {"open"}

    snap, ch = sweep(store, [ok([key("a")])])  # b removed in the tenant
    assert ch[("dormant", "b")] == "resolved" and ch[("dormant", "a")] == "open"
    assert snap.gone_keys == {key("b").key}
    assert {r.fingerprint for r in store.findings(status="resolved")} and all(r.resolved_sweep for r in store.findings(status="resolved"))

    _, ch = sweep(store, [ok([key("a"), key("b")])])  # b is back
    assert ch[("dormant", "b")] == "regressed"
    row = next(r for r in store.findings() if r.rule_id == "dormant" and r.data["subject"]["name"] == "b")
    assert row.regressions == 1 and row.status == "open" and row.resolved_sweep is None


def test_failed_inventory_keeps_records_and_findings_open(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/s.db")
    sweep(store, [ok([key("a")])])
    snap, ch = sweep(store, [failed()])
    # The key is carried from the last good read, marked stale, and its findings stay open.
    assert [r.key for r in snap.records] == [key("a").key]
    assert snap.stale_keys == {key("a").key} and snap.carried == {INV: 1}
    assert "resolved" not in ch.values()
    assert ch[("dormant", "a")] == "open"
    assert store.findings()[0].data["subject"]["stale"] is True


def test_unreported_inventory_is_carried_unless_its_scope_was_enumerated(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/s.db")
    sweep(store, [ok([key("a")])])
    # The collector crashed: nothing reported. Records stay, a coverage gap is added.
    snap, ch = sweep(store, [])
    assert snap.stale_keys == {key("a").key}
    assert any(c.inventory == INV and not c.ok for c in snap.coverage)
    assert "resolved" not in ch.values()
    # The org's repo list was read and api is not in it: the repo is gone.
    snap, ch = sweep(store, [ok([], inventory="github:acme:repos", scopes=["github:acme/"])])
    assert snap.gone_keys == {key("a").key}
    assert ch[("dormant", "a")] == "resolved"


def test_sweep_write_is_all_or_nothing(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/s.db")
    sweep(store, [ok([key("a")])])
    sid = store.begin_sweep(NOW)
    snap = store.build_snapshot([ok([])])
    changes = store.diff_findings([], snap)
    changes.append(changes[0].__class__("bogus", "open", {}))  # a change that cannot be written
    try:
        store.commit_sweep(sid, snap, changes, {})
    except Exception:
        pass
    # Nothing of the failed sweep landed: the key is still current, its findings still open.
    assert [r.key for r in store.current_records()] == [key("a").key]
    assert all(r.status == "open" for r in store.findings(status="all"))
    assert store.last_sweep().id == sid - 1


def test_hmac_key_is_created_private_and_reused(tmp_path):
    path = tmp_path / "k" / "nhiscan.key"
    k1 = load_or_create_key(path)
    assert len(k1) == 32 and (path.stat().st_mode & 0o777) == 0o600
    assert load_or_create_key(path) == k1


def test_finding_from_carried_data_is_marked_not_refreshed(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/s.db")
    sweep(store, [ok([key("a")])])
    assert all(r.refreshed for r in store.findings())
    sweep(store, [failed()])
    assert not any(r.refreshed for r in store.findings())
    sweep(store, [ok([key("a")])])
    assert all(r.refreshed for r in store.findings())


def test_lease_is_exclusive_until_released_or_expired(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/s.db")
    other = Store(f"sqlite:///{tmp_path}/s.db")  # a second process's connection
    assert store.acquire_lease("sweep", "a", timedelta(minutes=5))
    assert not other.acquire_lease("sweep", "b", timedelta(minutes=5))
    assert other.lease_holder("sweep") == "a"
    assert store.acquire_lease("sweep", "a", timedelta(minutes=5))  # renewal by the holder
    store.release_lease("sweep", "a")
    assert other.acquire_lease("sweep", "b", timedelta(seconds=-1))  # already expired on arrival
    assert store.acquire_lease("sweep", "a", timedelta(minutes=5))


def test_acceptance_silences_until_it_expires(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/s.db")
    _, ch = sweep(store, [ok([key("a")])])
    fp = next(r.fingerprint for r in store.findings() if r.rule_id == "dormant")
    store.accept(fp, until=(NOW + timedelta(days=10)).date(), reason="decommission planned", by="bob@acme.example")

    def changes(now):
        sid = store.begin_sweep(now)
        snap = store.build_snapshot([ok([key("a")])])
        chs = store.diff_findings(evaluate(build_graph(snap.records), now, {}, snap.stale_keys), snap, today=now.date())
        store.commit_sweep(sid, snap, chs, {})
        return {c.fingerprint: c.change for c in chs}

    assert changes(NOW)[fp] == "accepted"
    assert next(r for r in store.findings(status="accepted") if r.fingerprint == fp)
    assert changes(NOW + timedelta(days=5))[fp] == "accepted"
    # The acceptance has expired: the finding reopens (and alerts again).
    assert changes(NOW + timedelta(days=11))[fp] == "reopened"
    assert changes(NOW + timedelta(days=12))[fp] == "open"

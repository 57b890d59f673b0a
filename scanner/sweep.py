"""One sweep, end to end: collect -> snapshot -> graph -> rules -> diff -> store -> reports.

Each stage hands the next a plain value. The database is written once, at the
end, in one transaction (see :meth:`scanner.store.Store.commit_sweep`), so a
crash anywhere before that leaves the previous sweep's state as it was.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from detectors.rules import RULES, SEVERITIES, evaluate
from graph.build import IdentityHints, build_graph
from scanner.config import Config, ConfigError
from scanner.records import CollectResult, InventoryStatus
from scanner.store import ACCEPTED, NEW, OPEN, REGRESSED, REOPENED, RESOLVED, UNREFRESHED, Store, crash_point, load_or_create_key

log = logging.getLogger("nhiscan.sweep")

Progress = Callable[[str, str], None]  # (source, message)


@dataclass
class SweepOutcome:
    sweep_id: int
    now: datetime
    summary: dict[str, Any]
    findings: list[dict[str, Any]]  # every finding touched this sweep, with its "change"
    coverage: list[InventoryStatus]
    report_paths: list[Path]
    graph: Any


def _file_collector(name: str, inventory: str, load: Callable[[], tuple[list, list[str]]]) -> CollectResult:
    result = CollectResult(source=name)
    try:
        records, warnings = load()
    except (ConfigError, OSError) as err:
        result.coverage.append(InventoryStatus(source=name, inventory=inventory, ok=False, reason=str(err)))
        return result
    result.records.extend(records)
    result.warnings.extend(warnings)
    result.coverage.append(InventoryStatus(source=name, inventory=inventory, ok=True, count=len(records)))
    return result


# Imported in one thread before the collector pool starts: collectors import each other and the
# secret engine lazily (the ticket scanner uses the Jira collector; GitHub, GitLab, git and tickets
# all load detectors.secrets), and the same module imported by several threads at once can
# deadlock (Python raises _DeadlockError in one of them, and that source fails).
SHARED_LAZY_IMPORTS = (
    "detectors.secrets", "detectors.secrets.exposures", "detectors.secrets.liveness",
    "scanner.collectors.jira", "scanner.collectors.git_repos",
)


def collector_jobs(config: Config, hmac_key: bytes, now: datetime, progress: Progress | None) -> dict[str, Callable[[], CollectResult]]:
    """One zero-argument job per configured source."""
    from scanner import registers

    jobs: dict[str, Callable[[], CollectResult]] = {}
    if config.contracts:
        path = config.path(config.contracts.file)
        jobs["contracts"] = lambda: _file_collector("contracts", "contracts:register", lambda: registers.load_contracts(path, today=now.date()))
    if config.people:
        path_p = config.path(config.people.file)
        jobs["hr"] = lambda: _file_collector("hr", "hr:people", lambda: registers.load_people(path_p))
    if config.sources.all():
        for name in SHARED_LAZY_IMPORTS:
            importlib.import_module(name)
    for kind, src in config.sources.all():
        collector = importlib.import_module(f"scanner.collectors.{kind}")

        def run(collector=collector, src=src) -> CollectResult:
            cb = (lambda msg: progress(src.name, msg)) if progress else None
            return collector.collect(src, config, hmac_key=hmac_key, progress=cb)
        jobs[src.name] = run
    return jobs


def collect_all(config: Config, hmac_key: bytes, now: datetime, progress: Progress | None = None) -> list[CollectResult]:
    """Run the collectors in parallel; a collector that raises becomes a coverage gap, not a crash."""
    jobs = collector_jobs(config, hmac_key, now, progress)
    results: list[CollectResult] = []
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(jobs)))) as pool:
        futures = {pool.submit(job): name for name, job in jobs.items()}
        for fut in as_completed(futures):
            name = futures[fut]
            try:
                res = fut.result()
            except Exception as err:  # noqa: BLE001 - one broken source must not stop the sweep
                log.error("source %s failed: %s", name, type(err).__name__)
                log.debug("source %s traceback", name, exc_info=True)
                res = CollectResult(source=name, coverage=[InventoryStatus(source=name, inventory=f"{name}:*", ok=False,
                                                                            reason=f"collector failed: {type(err).__name__}: {_safe_text(err)}")])
            if progress:
                gaps = sum(1 for c in res.coverage if not c.ok)
                progress(name, f"done: {len(res.records)} records" + (f", {gaps} inventories not read" if gaps else ""))
            results.append(res)
    return results


def _safe_text(err: BaseException) -> str:
    # Exception texts from HTTP clients can echo request headers; keep the first line, bounded.
    return str(err).splitlines()[0][:200] if str(err) else ""


def hints_from_config(config: Config) -> IdentityHints:
    return IdentityHints(
        logins=config.identity.logins,
        ownership=tuple((m.key, m.owner, m.evidence) for m in config.ownership),
        internal_domains=tuple(config.identity.internal_domains),
    )


class SweepBusy(RuntimeError):
    """Another process holds the sweep lease."""


def lease_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(holder: str) -> bool:
    """True when a lease holder ran on this host and its process no longer exists.

    A process killed mid-sweep cannot release its lease; without this, the next run on the
    same machine would wait for the lease to expire. Holders on other hosts are trusted
    until their lease expires.
    """
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire_or_take_over(store: Store, name: str, holder: str, ttl: timedelta) -> bool:
    if store.acquire_lease(name, holder, ttl):
        return True
    current = store.lease_holder(name)
    if current and holder_is_dead(current):
        log.warning("taking over the %s lease from %s, which is no longer running", name, current)
        return store.take_over_lease(name, current, holder, ttl)
    return False


def run_sweep(config: Config, *, now: datetime | None = None, progress: Progress | None = None, write_reports: bool = True,
              deliver: bool = True) -> SweepOutcome:
    """One sweep under the database lease, so two processes never sweep the same store at once."""
    store = Store(config.store_url)
    holder = lease_holder_id()
    if not acquire_or_take_over(store, "sweep", holder, timedelta(minutes=config.schedule.lease_minutes)):
        raise SweepBusy(f"another sweep is running on this database (lease held by {store.lease_holder('sweep')})")
    try:
        return _sweep(config, store, now or datetime.now(timezone.utc), progress, write_reports, deliver)
    finally:
        store.release_lease("sweep", holder)


def _sweep(config: Config, store: Store, now: datetime, progress: Progress | None, write_reports: bool, deliver: bool) -> SweepOutcome:
    hmac_key = load_or_create_key(config.path(config.store.key_file))
    sync_acceptances(config, store)
    sweep_id = store.begin_sweep(now)
    started = time.monotonic()

    results = collect_all(config, hmac_key, now, progress)
    snapshot = store.build_snapshot(results)
    for w in snapshot.warnings:
        log.warning("%s", w)
    graph = build_graph(snapshot.records, hints_from_config(config))
    findings = evaluate(graph, now, config.rules, snapshot.stale_keys)
    changes = store.diff_findings(findings, snapshot, today=now.date())

    touched = []
    for ch in changes:
        f = dict(ch.finding)
        f["change"] = ch.change
        touched.append(f)
    summary = summarise(touched, snapshot.coverage, snapshot.carried, time.monotonic() - started, len(snapshot.records))
    crash_point("sweep-before-commit")
    # The notifications this sweep owes are written with it, in the same transaction.
    store.commit_sweep(sweep_id, snapshot, changes, summary, plan_notifications(config, touched, sweep_id, summary))

    paths: list[Path] = []
    if write_reports:
        from reports.files import write_sweep_reports

        paths = write_sweep_reports(config, store, sweep_id)
    crash_point("sweep-before-delivery")
    if deliver:
        deliver_notifications(config, store)
    return SweepOutcome(sweep_id, now, summary, touched, snapshot.coverage, paths, graph)


def sync_acceptances(config: Config, store: Store) -> None:
    """The reviewed acceptances file, when configured, is the truth for the entries it holds."""
    if not config.acceptances:
        return
    from scanner.registers import load_acceptances
    from scanner.store import AcceptanceRow

    path = config.path(config.acceptances.file)
    entries, warnings = load_acceptances(path)
    for w in warnings:
        log.warning("%s", w)
    store.sync_file_acceptances(
        [AcceptanceRow(fingerprint=a.fingerprint, until=a.until, reason=a.reason, accepted_by=a.by, created_at=datetime.now(timezone.utc))
         for a in entries],
        origin=f"file:{path}",
    )


def plan_notifications(config: Config, findings: list[dict[str, Any]], sweep_id: int, summary: dict[str, Any]) -> list:
    rows = []
    if config.notify.slack:
        from reports import slack_alerts

        rows += slack_alerts.plan(findings, sweep_id, summary, config.notify.slack)
    if config.notify.jira:
        from reports import jira_tickets

        rows += jira_tickets.plan(findings, sweep_id, config.notify.jira)
    return rows


def deliver_notifications(config: Config, store: Store) -> dict[str, dict[str, int]]:
    """Send what the outbox holds; a channel that fails keeps its rows pending for the next run."""
    done: dict[str, dict[str, int]] = {}
    for name in ("slack", "jira"):
        if getattr(config.notify, name) is None:
            continue
        module = importlib.import_module("reports.slack_alerts" if name == "slack" else "reports.jira_tickets")
        try:
            done[name] = module.deliver(config, store)
        except Exception as err:  # noqa: BLE001 - delivery is retried next run; the sweep is already recorded
            log.error("%s delivery failed: %s: %s", name, type(err).__name__, _safe_text(err))
            done[name] = {"error": 1}
    return done


def summarise(findings: list[dict[str, Any]], coverage: list[InventoryStatus], carried: dict[str, int], seconds: float, records: int) -> dict[str, Any]:
    """Counts per rule and severity for each change kind, plus coverage totals."""
    per_rule: dict[tuple[str, str], Counter] = {}
    by_severity: Counter = Counter()
    for f in findings:
        per_rule.setdefault((f["rule_id"], f["severity"]), Counter())[f["change"]] += 1
        if f["change"] in (NEW, OPEN, REGRESSED, UNREFRESHED, REOPENED):
            by_severity[f["severity"]] += 1
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "open_by_severity": dict(by_severity),
        "changes": dict(Counter(f["change"] for f in findings)),
        "rows": [
            {
                "rule": rid, "title": RULES[rid].title if rid in RULES else rid, "severity": sev,
                "new": c[NEW], "open": c[OPEN] + c[UNREFRESHED], "regressed": c[REGRESSED] + c[REOPENED], "resolved": c[RESOLVED],
                "accepted": c[ACCEPTED],
            }
            for (rid, sev), c in sorted(per_rule.items(), key=lambda kv: (order.get(kv[0][1], 9), kv[0][0]))
        ],
        "coverage": {
            "inventories": len(coverage),
            "read": sum(1 for c in coverage if c.ok),
            "not_read": [{"inventory": c.inventory, "reason": c.reason, "carried": carried.get(c.inventory, 0)} for c in coverage if not c.ok],
        },
    }

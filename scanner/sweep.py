"""One sweep, end to end: collect -> snapshot -> graph -> rules -> diff -> store -> reports.

Each stage hands the next a plain value. The database is written once, at the
end, in one transaction (see :meth:`scanner.store.Store.commit_sweep`), so a
crash anywhere before that leaves the previous sweep's state as it was.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from detectors.rules import RULES, SEVERITIES, evaluate
from graph.build import IdentityHints, build_graph
from scanner.config import Config, ConfigError
from scanner.records import CollectResult, InventoryStatus
from scanner.store import NEW, OPEN, REGRESSED, RESOLVED, UNREFRESHED, Store, load_or_create_key

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
    for kind, src in config.sources.all():
        def run(kind=kind, src=src) -> CollectResult:
            collector = importlib.import_module(f"scanner.collectors.{kind}")
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


def run_sweep(config: Config, *, now: datetime | None = None, progress: Progress | None = None, write_reports: bool = True) -> SweepOutcome:
    now = now or datetime.now(timezone.utc)
    store = Store(config.store_url)
    hmac_key = load_or_create_key(config.path(config.store.key_file))
    sweep_id = store.begin_sweep(now)
    started = time.monotonic()

    results = collect_all(config, hmac_key, now, progress)
    snapshot = store.build_snapshot(results)
    for w in snapshot.warnings:
        log.warning("%s", w)
    graph = build_graph(snapshot.records, hints_from_config(config))
    findings = evaluate(graph, now, config.rules, snapshot.stale_keys)
    changes = store.diff_findings(findings, snapshot)

    touched = []
    for ch in changes:
        f = dict(ch.finding)
        f["change"] = ch.change
        touched.append(f)
    summary = summarise(touched, snapshot.coverage, snapshot.carried, time.monotonic() - started, len(snapshot.records))
    store.commit_sweep(sweep_id, snapshot, changes, summary)

    paths: list[Path] = []
    if write_reports:
        from reports.files import write_sweep_reports

        paths = write_sweep_reports(config, store, sweep_id)
    return SweepOutcome(sweep_id, now, summary, touched, snapshot.coverage, paths, graph)


def summarise(findings: list[dict[str, Any]], coverage: list[InventoryStatus], carried: dict[str, int], seconds: float, records: int) -> dict[str, Any]:
    """Counts per rule and severity for each change kind, plus coverage totals."""
    per_rule: dict[tuple[str, str], Counter] = {}
    by_severity: Counter = Counter()
    for f in findings:
        per_rule.setdefault((f["rule_id"], f["severity"]), Counter())[f["change"]] += 1
        if f["change"] in (NEW, OPEN, REGRESSED, UNREFRESHED):
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
                "new": c[NEW], "open": c[OPEN] + c[UNREFRESHED], "regressed": c[REGRESSED], "resolved": c[RESOLVED],
            }
            for (rid, sev), c in sorted(per_rule.items(), key=lambda kv: (order.get(kv[0][1], 9), kv[0][0]))
        ],
        "coverage": {
            "inventories": len(coverage),
            "read": sum(1 for c in coverage if c.ok),
            "not_read": [{"inventory": c.inventory, "reason": c.reason, "carried": carried.get(c.inventory, 0)} for c in coverage if not c.ok],
        },
    }

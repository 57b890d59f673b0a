"""The store: snapshots of records, sweeps with their coverage, findings with history.

sqlmodel on SQLite by default; nothing here is SQLite-specific (JSON columns,
plain integer ids), so a PostgreSQL URL works unchanged.

A sweep reads the previous state, computes everything in memory, and writes
its result in **one transaction** (:meth:`Store.commit_sweep`): a crash part-way
through leaves the previous sweep's state intact, never half of a new one.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import JSON, Column, event, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, create_engine, select

from scanner.records import CollectResult, InventoryStatus, Record, record_from_dict


class SweepRow(SQLModel, table=True):
    __tablename__ = "sweep"
    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime
    finished_at: datetime | None = None
    clock: datetime  # the "now" the rules were evaluated at
    status: str = "running"  # running | complete
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class RecordRow(SQLModel, table=True):
    __tablename__ = "record"
    key: str = Field(primary_key=True)
    source: str = Field(index=True)
    kind: str = Field(index=True)
    inventory: str = Field(index=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON))
    first_seen_sweep: int
    last_seen_sweep: int
    gone_sweep: int | None = Field(default=None, index=True)  # set when a good read no longer lists it
    refreshed: bool = True  # False: its inventory failed last sweep; data is from last_seen_sweep


class CoverageRow(SQLModel, table=True):
    __tablename__ = "coverage"
    id: int | None = Field(default=None, primary_key=True)
    sweep_id: int = Field(index=True)
    source: str
    inventory: str
    ok: bool
    count: int = 0
    reason: str | None = None
    carried: int = 0  # records kept from an earlier sweep because this read failed


class FindingRow(SQLModel, table=True):
    __tablename__ = "finding"
    fingerprint: str = Field(primary_key=True)
    rule_id: str = Field(index=True)
    severity: str
    subject_key: str = Field(index=True)
    status: str = Field(index=True)  # open | resolved
    first_seen_sweep: int
    last_seen_sweep: int
    resolved_sweep: int | None = None
    resolved_at: datetime | None = None
    regressions: int = 0
    refreshed: bool = True  # False: kept open only because a source it depends on failed
    data: dict[str, Any] = Field(sa_column=Column(JSON))


class FindingEventRow(SQLModel, table=True):
    __tablename__ = "finding_event"
    id: int | None = Field(default=None, primary_key=True)
    sweep_id: int = Field(index=True)
    fingerprint: str = Field(index=True)
    change: str  # new | open | resolved | regressed | unrefreshed


class AcceptanceRow(SQLModel, table=True):
    """A risk acceptance: the finding is reported as accepted, not alerted, until ``until``."""

    __tablename__ = "acceptance"
    fingerprint: str = Field(primary_key=True)
    until: date
    reason: str
    accepted_by: str
    created_at: datetime
    origin: str = "cli"  # cli | file:<path>


class LeaseRow(SQLModel, table=True):
    """A named lease: one sweep at a time, one scheduler at a time, across processes."""

    __tablename__ = "lease"
    name: str = Field(primary_key=True)
    holder: str
    expires_at: datetime


class OutboxRow(SQLModel, table=True):
    """Every intended notification, written with the sweep that caused it (transactional outbox).

    ``dedupe_key`` is unique: the same finding state can never be queued twice, and delivery
    records what it did, so a crash at any point neither loses nor repeats a message.
    """

    __tablename__ = "outbox"
    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, index=True)
    channel: str  # slack | jira
    kind: str  # digest | summary | open | resolve
    target: str  # an email, a channel, a ticket label
    payload: dict[str, Any] = Field(sa_column=Column(JSON))
    state: str = Field(default="pending", index=True)  # pending | sending | sent | failed
    attempts: int = 0
    last_error: str | None = None
    created_sweep: int
    sent_at: datetime | None = None
    external_ref: str | None = None  # Slack ts, Jira issue key


class TicketRow(SQLModel, table=True):
    """Which Jira issue tracks a finding (or a subject): the local map searched first."""

    __tablename__ = "ticket"
    label: str = Field(primary_key=True)  # nhi-<fingerprint> or nhi-s-<subject hash>
    issue_key: str
    state: str = "open"  # open | done


# The per-sweep change of one finding, as the diff computes it.
NEW, OPEN, RESOLVED, REGRESSED, UNREFRESHED = "new", "open", "resolved", "regressed", "unrefreshed"
# Risk acceptance: ACCEPTED while an acceptance is in force; REOPENED when it has expired.
ACCEPTED, REOPENED = "accepted", "reopened"
# The changes that put a finding in front of a person.
ALERTING = (NEW, REGRESSED, REOPENED)


@dataclass
class Snapshot:
    """The records a sweep evaluates: fresh ones plus those carried from failed reads."""

    records: list[Record]
    coverage: list[InventoryStatus]
    carried: dict[str, int]  # inventory -> records kept from an earlier sweep
    stale_keys: set[str]  # records not refreshed this sweep
    gone_keys: set[str]  # records a good read no longer lists
    warnings: list[str] = field(default_factory=list)
    _fresh: dict[str, Record] = field(default_factory=dict, repr=False)

    @property
    def failed_inventories(self) -> set[str]:
        return {c.inventory for c in self.coverage if not c.ok}


@dataclass
class FindingChange:
    fingerprint: str
    change: str
    finding: dict[str, Any]


def load_or_create_key(path: Path) -> bytes:
    """The per-installation HMAC key for secret hashes; created 0600 on first use."""
    if path.exists():
        key = path.read_bytes()
        if len(key) < 32:
            raise ValueError(f"{path}: HMAC key file is shorter than 32 bytes; delete it to create a new one")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class Store:
    def __init__(self, url: str):
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url)
        if url.startswith("sqlite"):
            # Readers (the CLI, a report) must not block on the nightly writer.
            @event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - driver hook
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=10000")
                cur.close()

        SQLModel.metadata.create_all(self.engine)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # --- sweeps -----------------------------------------------------------------

    def begin_sweep(self, clock: datetime) -> int:
        with self.session() as s:
            row = SweepRow(started_at=datetime.now(timezone.utc), clock=clock)
            s.add(row)
            s.commit()
            return row.id

    def last_sweep(self, *, complete: bool = True) -> SweepRow | None:
        with self.session() as s:
            q = select(SweepRow).order_by(SweepRow.id.desc())
            if complete:
                q = q.where(SweepRow.status == "complete")
            return s.exec(q).first()

    def sweeps(self, limit: int = 30) -> list[SweepRow]:
        with self.session() as s:
            return list(s.exec(select(SweepRow).order_by(SweepRow.id.desc()).limit(limit)))

    def coverage(self, sweep_id: int) -> list[CoverageRow]:
        with self.session() as s:
            return list(s.exec(select(CoverageRow).where(CoverageRow.sweep_id == sweep_id)))

    # --- snapshot ---------------------------------------------------------------

    def build_snapshot(self, results: Iterable[CollectResult]) -> Snapshot:
        """Merge this sweep's collections with what the store already holds.

        Records of an inventory read successfully replace that inventory's old
        records (those no longer listed are gone). Records of an inventory that
        failed, or that no collector reported, are carried from the last good
        read and marked stale — unless a collector enumerated their scope
        completely (``complete_scopes``) and they were not in it.
        """
        fresh: dict[str, Record] = {}
        coverage: list[InventoryStatus] = []
        warnings: list[str] = []
        complete_scopes: list[str] = []
        for result in results:
            coverage.extend(result.coverage)
            warnings.extend(result.warnings)
            complete_scopes.extend(result.complete_scopes)
            for rec in result.records:
                fresh[rec.key] = rec
        ok_inventories = {c.inventory for c in coverage if c.ok}
        reported = {c.inventory for c in coverage}

        records = list(fresh.values())
        carried: dict[str, int] = {}
        stale: set[str] = set()
        gone: set[str] = set()
        with self.session() as s:
            for row in s.exec(select(RecordRow).where(RecordRow.gone_sweep.is_(None))):
                if row.key in fresh:
                    continue
                if row.inventory in ok_inventories:
                    gone.add(row.key)
                elif row.inventory not in reported and any(row.inventory.startswith(p) for p in complete_scopes):
                    gone.add(row.key)
                else:
                    try:
                        records.append(record_from_dict(row.data))
                    except (KeyError, TypeError, ValueError) as err:
                        warnings.append(f"store: could not revive {row.key}: {err}")
                        continue
                    stale.add(row.key)
                    carried[row.inventory] = carried.get(row.inventory, 0) + 1
        for inv in sorted(set(carried) - reported):
            # Not reported at all: its collector crashed or was removed from the config.
            source = inv.split(":", 1)[0]
            coverage.append(InventoryStatus(source=source, inventory=inv, ok=False, reason="not read this sweep (source failed or not configured)"))
        return Snapshot(records, coverage, carried, stale, gone, warnings, fresh)

    # --- findings -----------------------------------------------------------------

    def open_findings(self) -> dict[str, FindingRow]:
        with self.session() as s:
            return {f.fingerprint: f for f in s.exec(select(FindingRow))}

    def diff_findings(self, findings: list[dict[str, Any]], snapshot: Snapshot, today: date | None = None) -> list[FindingChange]:
        """Classify each finding against the stored history (pure apart from two reads).

        A finding that did not fire this sweep is resolved only if every
        inventory it was derived from was read successfully; otherwise it stays
        open as "unrefreshed" (DESIGN.md invariant 2). A firing finding under an
        acceptance in force is "accepted"; once the acceptance expires it is
        "reopened".
        """
        today = today or datetime.now(timezone.utc).date()
        known = self.open_findings()
        accepted = {fp for fp, a in self.acceptances().items() if a.until >= today}
        failed = snapshot.failed_inventories
        changes: list[FindingChange] = []
        current = {f["fingerprint"]: f for f in findings}
        for fp, f in current.items():
            row = known.get(fp)
            if fp in accepted:
                changes.append(FindingChange(fp, ACCEPTED, f))
            elif row is None:
                changes.append(FindingChange(fp, NEW, f))
            elif row.status == "resolved":
                changes.append(FindingChange(fp, REGRESSED, f))
            elif row.status == "accepted":
                changes.append(FindingChange(fp, REOPENED, f))
            else:
                changes.append(FindingChange(fp, OPEN, f))
        for fp, row in known.items():
            if fp in current or row.status == "resolved":
                continue
            depends = set(row.data.get("inventories", []))
            if depends & failed:
                changes.append(FindingChange(fp, UNREFRESHED, row.data))
            else:
                changes.append(FindingChange(fp, RESOLVED, row.data))
        return changes

    def commit_sweep(
        self,
        sweep_id: int,
        snapshot: Snapshot,
        changes: list[FindingChange],
        summary: dict[str, Any],
        outbox: list[OutboxRow] = (),
    ) -> None:
        """Write the whole sweep — records, coverage, findings, events, outbox — in one transaction."""
        now = datetime.now(timezone.utc)
        with self.session() as s:
            existing = {r.key: r for r in s.exec(select(RecordRow).where(RecordRow.key.in_(list(snapshot._fresh) + list(snapshot.gone_keys) + list(snapshot.stale_keys))))}
            for key, rec in snapshot._fresh.items():
                row = existing.get(key)
                if row is None:
                    s.add(RecordRow(key=key, source=rec.source, kind=rec.kind, inventory=rec.inventory, data=rec.to_dict(),
                                    first_seen_sweep=sweep_id, last_seen_sweep=sweep_id))
                else:
                    row.data, row.inventory, row.last_seen_sweep = rec.to_dict(), rec.inventory, sweep_id
                    row.gone_sweep, row.refreshed = None, True
                    s.add(row)
            for key in snapshot.gone_keys:
                row = existing[key]
                row.gone_sweep = sweep_id
                s.add(row)
            for key in snapshot.stale_keys:
                row = existing[key]
                row.refreshed = False
                s.add(row)
            for c in snapshot.coverage:
                s.add(CoverageRow(sweep_id=sweep_id, source=c.source, inventory=c.inventory, ok=c.ok, count=c.count,
                                  reason=c.reason, carried=snapshot.carried.get(c.inventory, 0)))
            rows = {r.fingerprint: r for r in s.exec(select(FindingRow).where(FindingRow.fingerprint.in_([c.fingerprint for c in changes])))}
            for ch in changes:
                row = rows.get(ch.fingerprint)
                f = ch.finding
                if row is None:  # NEW, or ACCEPTED before it was ever seen
                    row = FindingRow(fingerprint=ch.fingerprint, rule_id=f["rule_id"], severity=f["severity"],
                                     subject_key=f["subject"]["key"], status="accepted" if ch.change == ACCEPTED else "open",
                                     first_seen_sweep=sweep_id, last_seen_sweep=sweep_id, data=f,
                                     refreshed=not f["subject"].get("stale"))
                elif ch.change in (OPEN, REGRESSED, REOPENED, ACCEPTED):
                    row.status = "accepted" if ch.change == ACCEPTED else "open"
                    row.data, row.severity, row.last_seen_sweep = f, f["severity"], sweep_id
                    row.refreshed = not f["subject"].get("stale")
                    if ch.change == REGRESSED:
                        row.regressions += 1
                        row.resolved_sweep = row.resolved_at = None
                elif ch.change == RESOLVED:
                    row.status, row.resolved_sweep, row.resolved_at = "resolved", sweep_id, now
                elif ch.change == UNREFRESHED:
                    row.refreshed = False
                s.add(row)
                s.add(FindingEventRow(sweep_id=sweep_id, fingerprint=ch.fingerprint, change=ch.change))
            for item in outbox:
                s.add(item)
            sweep = s.get(SweepRow, sweep_id)
            sweep.status, sweep.finished_at, sweep.summary = "complete", now, summary
            s.add(sweep)
            s.commit()

    def findings(self, *, status: str = "open", rule: str | None = None) -> list[FindingRow]:
        with self.session() as s:
            q = select(FindingRow)
            if status != "all":
                q = q.where(FindingRow.status == status)
            if rule:
                q = q.where(FindingRow.rule_id == rule)
            return list(s.exec(q.order_by(FindingRow.rule_id, FindingRow.subject_key)))

    def finding_events(self, sweep_id: int) -> dict[str, str]:
        with self.session() as s:
            return {e.fingerprint: e.change for e in s.exec(select(FindingEventRow).where(FindingEventRow.sweep_id == sweep_id))}

    def current_records(self) -> list[RecordRow]:
        with self.session() as s:
            return list(s.exec(select(RecordRow).where(RecordRow.gone_sweep.is_(None))))

    # --- risk acceptance ------------------------------------------------------------

    def accept(self, fingerprint: str, *, until: date, reason: str, by: str, origin: str = "cli") -> None:
        with self.session() as s:
            row = s.get(AcceptanceRow, fingerprint) or AcceptanceRow(fingerprint=fingerprint, until=until, reason=reason,
                                                                     accepted_by=by, created_at=datetime.now(timezone.utc))
            row.until, row.reason, row.accepted_by, row.origin = until, reason, by, origin
            s.add(row)
            s.commit()

    def acceptances(self) -> dict[str, AcceptanceRow]:
        with self.session() as s:
            return {a.fingerprint: a for a in s.exec(select(AcceptanceRow))}

    def sync_file_acceptances(self, entries: list[AcceptanceRow], origin: str) -> None:
        """Make the acceptances from one reviewed file exactly what that file says."""
        with self.session() as s:
            for old in s.exec(select(AcceptanceRow).where(AcceptanceRow.origin == origin)):
                s.delete(old)
            s.flush()
            for e in entries:
                existing = s.get(AcceptanceRow, e.fingerprint)
                if existing is not None:
                    s.delete(existing)
                    s.flush()
                e.origin = origin
                s.add(e)
            s.commit()

    # --- leases -----------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take (or renew) a lease; False while another holder's lease is unexpired.

        One atomic UPDATE decides, so two processes racing for it cannot both win.
        """
        now = datetime.now(timezone.utc)
        with self.session() as s:
            result = s.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name)
                .where((LeaseRow.holder == holder) | (LeaseRow.expires_at < now))
                .values(holder=holder, expires_at=now + ttl)
            )
            s.commit()
            if result.rowcount:
                return True
            try:
                s.add(LeaseRow(name=name, holder=holder, expires_at=now + ttl))
                s.commit()
                return True
            except IntegrityError:
                s.rollback()
                return False

    def take_over_lease(self, name: str, dead_holder: str, holder: str, ttl: timedelta) -> bool:
        """Take a lease from a holder known to be dead (only if it is still that holder's)."""
        with self.session() as s:
            result = s.execute(
                update(LeaseRow).where(LeaseRow.name == name).where(LeaseRow.holder == dead_holder)
                .values(holder=holder, expires_at=datetime.now(timezone.utc) + ttl)
            )
            s.commit()
            return bool(result.rowcount)

    def release_lease(self, name: str, holder: str) -> None:
        with self.session() as s:
            row = s.get(LeaseRow, name)
            if row is not None and row.holder == holder:
                s.delete(row)
                s.commit()

    def lease_holder(self, name: str) -> str | None:
        with self.session() as s:
            row = s.get(LeaseRow, name)
            if row is None or _aware(row.expires_at) < datetime.now(timezone.utc):
                return None
            return row.holder

    # --- outbox -----------------------------------------------------------------------

    def outbox(self, *, states: tuple[str, ...] = ("pending", "sending"), channel: str | None = None) -> list[OutboxRow]:
        with self.session() as s:
            q = select(OutboxRow).where(OutboxRow.state.in_(states)).order_by(OutboxRow.id)
            if channel:
                q = q.where(OutboxRow.channel == channel)
            return list(s.exec(q))

    def mark_outbox(self, item_id: int, state: str, *, ref: str | None = None, error: str | None = None) -> None:
        with self.session() as s:
            row = s.get(OutboxRow, item_id)
            row.state = state
            if state == "sending":
                row.attempts += 1
            if state == "sent":
                row.sent_at = datetime.now(timezone.utc)
            if ref is not None:
                row.external_ref = ref
            row.last_error = error
            s.add(row)
            s.commit()

    def ticket(self, label: str) -> TicketRow | None:
        with self.session() as s:
            return s.get(TicketRow, label)

    def record_ticket(self, label: str, issue_key: str, state: str = "open") -> None:
        with self.session() as s:
            row = s.get(TicketRow, label) or TicketRow(label=label, issue_key=issue_key)
            row.issue_key, row.state = issue_key, state
            s.add(row)
            s.commit()


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


def crash_point(name: str) -> None:
    """Die here, abruptly, when ``NHISCAN_CRASH_AT`` names this point (crash-safety tests only).

    The tests kill a real ``nhiscan`` process at each dangerous moment (after a message is
    sent but before it is recorded, after a ticket is created but before it is mapped, before
    the sweep commits) and prove the next run neither loses nor repeats anything.
    """
    if os.environ.get("NHISCAN_CRASH_AT") == name:
        os._exit(86)


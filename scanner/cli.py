"""The ``nhiscan`` command line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from reports.escaping import escape_terminal as esc
from scanner.config import Config, ConfigError, load_config

console = Console()
err_console = Console(stderr=True)

MAX_GAPS_SHOWN = 10
SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(name)s: %(message)s", handlers=[RichHandler(console=err_console, show_path=False, markup=False)])
    # urllib3's debug lines include request URLs; keep third-party chatter at WARNING.
    for noisy in ("urllib3", "github", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(config_path: str) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as err:
        err_console.print(f"[red]error:[/red] {esc(err)}")
        sys.exit(2)


def _parse_now(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="nhiscan")
def main(verbose: int) -> None:
    """nhiscan: which non-human access outlived the reason it was granted?"""
    _setup_logging(verbose)


def run_scan_with_progress(config: Config, now: datetime | None = None):
    from scanner.sweep import run_sweep

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(source: str, message: str) -> None:
            if source not in tasks:
                tasks[source] = bar.add_task(esc(source))
            bar.update(tasks[source], description=f"{esc(source)}: {esc(message)}")

        outcome = run_sweep(config, now=now, progress=progress)
    print_summary(outcome.summary, outcome.sweep_id)
    for p in outcome.report_paths:
        console.print(f"report: {esc(p)}")
    return outcome


def print_summary(summary: dict, sweep_id: int) -> None:
    table = Table(title=f"sweep {sweep_id}: findings by rule and severity")
    for col in ("rule", "severity", "new", "still open", "regressed", "resolved"):
        table.add_column(col, justify="left" if col in ("rule", "severity") else "right")
    for r in summary.get("rows", []):
        table.add_row(esc(r["rule"]), f"[{SEVERITY_STYLE.get(r['severity'], '')}]{r['severity']}[/]", str(r["new"]), str(r["open"]), str(r["regressed"]), str(r["resolved"]))
    console.print(table)
    cov = summary.get("coverage", {})
    console.print(f"coverage: {cov.get('read', 0)} of {cov.get('inventories', 0)} inventories read")
    gaps = cov.get("not_read", [])
    for gap in gaps[:MAX_GAPS_SHOWN]:
        kept = f" (kept {gap['carried']} records from earlier sweeps)" if gap.get("carried") else ""
        console.print(f"  [yellow]not read[/yellow] {esc(gap['inventory'])}: {esc(gap['reason'])}{kept}")
    if len(gaps) > MAX_GAPS_SHOWN:
        console.print(f"  ... and {len(gaps) - MAX_GAPS_SHOWN} more inventories not read (the report lists them all)")


@main.command()
@click.option("-c", "--config", "config_path", default="config.toml", show_default=True, type=click.Path(dir_okay=False))
@click.option("--now", hidden=True, help="Evaluate rules at this ISO time instead of the clock (tests, replays).")
def scan(config_path: str, now: str | None) -> None:
    """Run one sweep: collect, evaluate rules, diff, report."""
    from scanner.sweep import SweepBusy

    config = _load(config_path)
    try:
        run_scan_with_progress(config, _parse_now(now))
    except SweepBusy as busy:
        err_console.print(f"[red]error:[/red] {esc(busy)}")
        sys.exit(3)


@main.command()
@click.option("-c", "--config", "config_path", default="config.toml", show_default=True, type=click.Path(dir_okay=False))
@click.option("--status", type=click.Choice(["open", "resolved", "all"]), default="open", show_default=True)
@click.option("--rule", "rule_id", help="Only this rule id.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def findings(config_path: str, status: str, rule_id: str | None, fmt: str) -> None:
    """List findings from the store."""
    from scanner.store import Store

    config = _load(config_path)
    from detectors.rules import SEVERITIES

    order = {name: i for i, name in enumerate(SEVERITIES)}
    rows = sorted(Store(config.store_url).findings(status=status, rule=rule_id), key=lambda r: (order.get(r.severity, 9), r.rule_id))
    if fmt == "json":
        out = []
        for r in rows:
            d = dict(r.data)
            d.update(status=r.status, first_seen_sweep=r.first_seen_sweep, last_seen_sweep=r.last_seen_sweep,
                     resolved_sweep=r.resolved_sweep, regressions=r.regressions, refreshed=r.refreshed)
            out.append(d)
        click.echo(json.dumps(out, indent=2, default=str))
        return
    table = Table(title=f"{len(rows)} {status} finding(s)")
    for col in ("severity", "rule", "subject", "type", "owner", "status", "fingerprint"):
        table.add_column(col)
    for r in rows:
        d = r.data
        owner = next((o["email"] for o in d.get("owners", []) if o.get("email")), None) or next(
            (s["email"] for s in d.get("sponsors", []) if s.get("email")), "—")
        table.add_row(f"[{SEVERITY_STYLE.get(r.severity, '')}]{r.severity}[/]", esc(r.rule_id), esc(d["subject"]["name"]),
                      esc(d["subject"]["type"]), esc(owner), r.status + ("" if r.refreshed else " (not refreshed)"), r.fingerprint)
    console.print(table)


@main.command()
@click.option("-c", "--config", "config_path", default="config.toml", show_default=True, type=click.Path(dir_okay=False))
@click.option("--once", is_flag=True, help="Run one sweep (the daemon's own job) and exit.")
def serve(config_path: str, once: bool) -> None:
    """Run sweeps on the configured schedule until SIGTERM (one scheduler per database)."""
    from scanner.daemon import scheduled_sweep, serve as run_daemon

    _load(config_path)  # fail fast, with the config error, before daemonising
    logging.getLogger("nhiscan.daemon").setLevel(logging.INFO)
    if once:
        scheduled_sweep(config_path)
        return
    run_daemon(Path(config_path))


@main.command()
@click.argument("fingerprint")
@click.option("-c", "--config", "config_path", default="config.toml", show_default=True, type=click.Path(dir_okay=False))
@click.option("--until", "until", required=True, help="Last day the acceptance holds (YYYY-MM-DD).")
@click.option("--reason", required=True, help="Why the risk is accepted (kept with the finding).")
@click.option("--by", "by", required=True, help="Email of the person accepting the risk.")
def accept(fingerprint: str, config_path: str, until: str, reason: str, by: str) -> None:
    """Accept a finding's risk until a date: reported as accepted, not alerted; it reopens after."""
    from datetime import date

    from scanner.store import Store

    config = _load(config_path)
    try:
        until_date = date.fromisoformat(until)
    except ValueError:
        err_console.print(f"[red]error:[/red] --until: {esc(until)!s} is not a date (expected YYYY-MM-DD)")
        sys.exit(2)
    if "@" not in by:
        err_console.print(f"[red]error:[/red] --by: {esc(by)} is not an email address")
        sys.exit(2)
    store = Store(config.store_url)
    known = {r.fingerprint: r for r in store.findings(status="all")}
    if fingerprint not in known:
        err_console.print(f"[red]error:[/red] no finding with fingerprint {esc(fingerprint)} (see `nhiscan findings --status all`)")
        sys.exit(2)
    store.accept(fingerprint, until=until_date, reason=reason, by=by)
    row = known[fingerprint]
    console.print(f"accepted until {until_date.isoformat()}: {esc(row.rule_id)} on {esc(row.data['subject']['name'])}")


@main.command()
@click.option("-c", "--config", "config_path", default="config.toml", show_default=True, type=click.Path(dir_okay=False))
def notify(config_path: str) -> None:
    """Deliver the Slack messages and Jira changes still pending in the outbox."""
    from scanner.store import Store
    from scanner.sweep import deliver_notifications

    config = _load(config_path)
    done = deliver_notifications(config, Store(config.store_url))
    for channel, counts in done.items():
        console.print(f"{channel}: " + (", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing pending"))


@main.command()
def rules() -> None:
    """List the rules with their ids, severities, OWASP NHI and NIST CSF mappings."""
    from detectors.rules import RULES

    table = Table(title="rules")
    for col in ("id", "severity", "OWASP", "NIST", "title", "thresholds"):
        table.add_column(col)
    for r in RULES.values():
        params = ", ".join(f"{k}={v}" for k, v in r.params.items() if k not in ("enabled", "severity"))
        table.add_row(r.id, r.severity, r.owasp, r.nist, r.title, params)
    console.print(table)


@main.command()
@click.option("--dir", "workdir", default="nhiscan-demo", show_default=True, type=click.Path(file_okay=False),
              help="Where the demo writes its config, database and reports.")
def demo(workdir: str) -> None:
    """Start the sandbox with the bundled estate, sweep it, and print where the report is."""
    from sandbox.estate import EstateError
    from scanner.demo import run_demo

    try:
        run_demo(Path(workdir))
    except (EstateError, ConfigError) as err:
        err_console.print(f"[red]error:[/red] {esc(err)}")
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()

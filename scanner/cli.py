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
@click.option("--keep-running", is_flag=True, help="Keep the sandbox up after the sweep (until Ctrl-C) to try other commands on it.")
@click.option("--estate", "estate_path", type=click.Path(exists=True, dir_okay=False),
              help="Your own estate file (sandbox/README.md) instead of the bundled one.")
def demo(workdir: str, keep_running: bool, estate_path: str | None) -> None:
    """Start the sandbox with the bundled estate, sweep it, and print where the report is."""
    from sandbox.estate import EstateError
    from scanner.demo import run_demo

    try:
        run_demo(Path(workdir), keep_running=keep_running, estate_path=Path(estate_path) if estate_path else None)
    except (EstateError, ConfigError) as err:
        err_console.print(f"[red]error:[/red] {esc(err)}")
        sys.exit(2)


# --- nhiscan graph: questions asked of the trust graph ------------------------------------------


@main.group(name="graph")
def graph_group() -> None:
    """Ask the identity-trust graph: who owns this, what can it reach, what does a contract still have.

    The graph is rebuilt from the store's current records (what the last sweeps saw), with the
    config's identity mappings; nothing is fetched from any tenant.
    """


def _graph_from_config(config_path: str):
    """(graph, clock of the last sweep) from the store the config names; exits 2 when there is no sweep yet."""
    from graph.snapshot import graph_from_store
    from scanner.store import Store

    config = _load(config_path)
    store = Store(config.store_url)
    last = store.last_sweep()
    if last is None:
        err_console.print("[red]error:[/red] the store holds no completed sweep yet: run [bold]nhiscan scan[/bold] first")
        sys.exit(2)
    clock = last.clock if last.clock.tzinfo else last.clock.replace(tzinfo=timezone.utc)
    return graph_from_store(store, config), clock


def _subject_or_exit(g, query: str) -> str:
    """A record key for SUBJECT (a key, or an unambiguous name/login/email); errors list the candidates."""
    from graph.queries import AmbiguousSubject, find_subject

    try:
        key = find_subject(g, query)
    except AmbiguousSubject as amb:
        err_console.print(f"[red]error:[/red] '{esc(query)}' is ambiguous; use one of these record keys:")
        for k in amb.candidates:
            node = g.nodes[k]
            err_console.print(f"  {esc(k)}  ({node['kind']}, {esc(node['name'])})")
        sys.exit(2)
    if key is None:
        folded = query.casefold()
        near = sorted(k for k, d in g.nodes(data=True) if folded in k.casefold() or folded in str(d["name"]).casefold())[:10]
        err_console.print(f"[red]error:[/red] no record has the key, name or login '{esc(query)}'")
        if near:
            err_console.print("did you mean: " + ", ".join(esc(k) for k in near))
        sys.exit(2)
    return key


def _subject_json(g, key: str) -> dict:
    from graph.queries import record, type_of

    rec = record(g, key)
    return {"key": key, "name": rec.name, "kind": rec.kind, "type": type_of(rec), "source": rec.source}


_config_option = click.option("-c", "--config", "config_path", default="config.toml", show_default=True, type=click.Path(dir_okay=False))
_format_option = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)


@graph_group.command("who-owns")
@click.argument("subject")
@_config_option
@_format_option
def graph_who_owns(subject: str, config_path: str, fmt: str) -> None:
    """Owners and sponsors of SUBJECT (a record key or an unambiguous name/login), with the evidence for each."""
    from graph.queries import is_departed, owners, sponsors

    g, clock = _graph_from_config(config_path)
    key = _subject_or_exit(g, subject)
    today = clock.date()

    def status(p) -> str:
        if p is None:
            return "unresolved"
        if is_departed(p, today):
            return "departed"
        return "unknown person" if p.source == "inferred" else str(getattr(p.status, "value", p.status))

    own = [{"email": o.person.email if o.person else None, "name": o.person.name if o.person else None, "account": o.account_key,
            "role": o.role, "status": status(o.person), "statuses": dict(o.person.statuses) if o.person else {},
            "confidence": round(o.confidence, 2), "evidence": list(o.evidence)}
           for o in owners(g, key)]
    spons = [{"contract": s.contract.contract_id, "counterparty": s.contract.counterparty, "contract_end": s.contract.end.isoformat() if s.contract.end else None,
              "email": s.person.email if s.person else s.contract.sponsor_email, "status": status(s.person),
              "statuses": dict(s.person.statuses) if s.person else {}, "evidence": list(s.evidence)}
             for s in sponsors(g, key)]

    def said(entry) -> str:
        """The merged status, and each people source's own word when they disagree."""
        words = entry["statuses"]
        if len(set(words.values())) <= 1:
            return entry["status"]
        return entry["status"] + " (" + ", ".join(f"{st} per {src}" for src, st in sorted(words.items())) + ")"

    if fmt == "json":
        click.echo(json.dumps({"subject": _subject_json(g, key), "owners": own, "sponsors": spons}, indent=2))
        return
    subj = _subject_json(g, key)
    console.print(f"[bold]{esc(subj['name'])}[/bold] ({esc(subj['type'])}) {esc(key)}")
    table = Table(title="owners")
    for col in ("owner", "role", "status", "confidence", "evidence"):
        table.add_column(col)
    for o in own:
        table.add_row(esc(o["email"] or o["account"] or "?"), esc(o["role"]), esc(said(o)), f"{o['confidence']:.2f}", esc(" → ".join(o["evidence"])))
    if not own:
        table.add_row("[yellow]none resolved[/yellow]", "", "", "", "")
    console.print(table)
    if spons:
        table = Table(title="sponsors (through contracts)")
        for col in ("sponsor", "status", "contract", "ends", "evidence"):
            table.add_column(col)
        for s in spons:
            table.add_row(esc(s["email"] or "none named"), esc(said(s)), esc(f"{s['contract']} {s['counterparty']}"), esc(s["contract_end"] or "—"),
                          esc(" → ".join(s["evidence"])))
        console.print(table)


@graph_group.command("reach")
@click.argument("subject")
@_config_option
@_format_option
def graph_reach(subject: str, config_path: str, fmt: str) -> None:
    """Everything SUBJECT (a credential, account or app) can reach, transitively, with the path."""
    from graph.queries import reach

    g, _clock = _graph_from_config(config_path)
    key = _subject_or_exit(g, subject)
    rows = [{"key": r.resource_key, "name": r.name, "level": r.level.name.lower(), "path": list(r.path),
             "path_names": [g.nodes[k]["name"] for k in r.path]} for r in reach(g, key)]
    if fmt == "json":
        click.echo(json.dumps({"subject": _subject_json(g, key), "reach": rows}, indent=2))
        return
    table = Table(title=f"{len(rows)} resource(s) {esc(g.nodes[key]['name'])} can reach")
    for col in ("resource", "level", "path"):
        table.add_column(col)
    for r in rows:
        table.add_row(esc(r["name"]), r["level"], esc(" → ".join(r["path_names"])))
    console.print(table)


@graph_group.command("contract")
@click.argument("contract_id")
@_config_option
@_format_option
@click.option("--all", "include_inactive", is_flag=True, help="Also list expired, revoked or suspended paths (marked).")
def graph_contract(contract_id: str, config_path: str, fmt: str, include_inactive: bool) -> None:
    """Every access path CONTRACT_ID still has: the offboarding inventory of one commercial relationship."""
    from graph.queries import contract_access_paths, contract_ended, find_contract, sponsor_of

    g, clock = _graph_from_config(config_path)
    c = find_contract(g, contract_id)
    if c is None:
        known = sorted(d["record"].contract_id for _k, d in g.nodes(data=True) if d["kind"] == "contract")
        err_console.print(f"[red]error:[/red] no contract '{esc(contract_id)}' in the register" + (f" (known: {esc(', '.join(known))})" if known else ""))
        sys.exit(2)
    paths = contract_access_paths(g, c.key, clock, include_inactive=include_inactive)
    sponsor = sponsor_of(g, c.key)
    ended = contract_ended(c, clock.date())
    if fmt == "json":
        out = {
            "contract": {"id": c.contract_id, "key": c.key, "counterparty": c.counterparty, "kind": c.contract_type,
                         "start": c.start.isoformat() if c.start else None, "end": c.end.isoformat() if c.end else None,
                         "status": "ended" if ended else c.status, "sponsor": sponsor.email if sponsor else c.sponsor_email},
            "access_paths": [{"key": p.key, "name": p.name, "kind": p.kind, "type": p.type, "source": p.source, "live": p.live,
                              "evidence": list(p.evidence), "via": p.via,
                              "reach": [{"key": r.resource_key, "name": r.name, "level": r.level.name.lower()} for r in p.reach]}
                             for p in paths],
        }
        click.echo(json.dumps(out, indent=2))
        return
    state = f"[red]ended {c.end.isoformat() if c.end else ''}[/red]" if ended else (f"ends {c.end.isoformat()}" if c.end else "open-ended")
    console.print(f"[bold]{esc(c.contract_id)} {esc(c.counterparty)}[/bold] ({esc(c.contract_type)}) · {state} · sponsor "
                  f"{esc(sponsor.email if sponsor else c.sponsor_email or 'none named')}")
    table = Table(title=f"{len(paths)} {'' if include_inactive else 'live '}access path(s)")
    for col in ("access path", "type", "source", "tied by", "reaches"):
        table.add_column(col)
    for p in paths:
        reaches = ", ".join(f"{r.name} ({r.level.name.lower()})" for r in p.reach[:4]) + (f" +{len(p.reach) - 4} more" if len(p.reach) > 4 else "")
        name = esc(p.name) + ("" if p.live else " [dim](inactive)[/dim]")
        table.add_row(f"{name}\n[dim]{esc(p.key)}[/dim]", esc(p.type), esc(p.source), esc("; ".join(p.evidence)), esc(reaches or "—"))
    console.print(table)


@graph_group.command("export")
@_config_option
@click.option("--format", "fmt", type=click.Choice(["graphml", "json"]), default="graphml", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
def graph_export(config_path: str, fmt: str, output: str | None) -> None:
    """The whole trust graph for other tools: GraphML, or node-link JSON."""
    from graph.export import to_graphml, to_json

    g, _clock = _graph_from_config(config_path)
    text = to_graphml(g) if fmt == "graphml" else json.dumps(to_json(g), indent=2) + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
        err_console.print(f"wrote {g.number_of_nodes()} nodes and {g.number_of_edges()} edges to {esc(output)}")
    else:
        click.echo(text, nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()

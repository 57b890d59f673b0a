"""The HTML report: the page a security lead opens in the morning and forwards to an auditor.

One self-contained file that works offline: inline CSS, inline SVG, no
script, no external resource (a Content-Security-Policy in the page forbids
them, so even a rendering bug cannot make it fetch or run anything). Every
piece of tenant text goes through Jinja's autoescaping: a token named
``<script>`` is shown as those characters.

The page, top to bottom: summary (open findings by severity, what changed since
the last sweep, the trend over recent sweeps, coverage gaps), contracts (each
with its sponsor and every access path it still has; ended contracts with live
access first), owners (what each person must do), then one card per open
finding (why, the evidence for owner and contract, a picture of what it
reaches, the remediation).

Layout (chart bars, picture boxes and edges) is computed here in Python and
handed to the templates as numbers, so the pictures are deterministic.
"""

from __future__ import annotations

import base64
import re
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from typing import Any

import jinja2
import networkx as nx
from markupsafe import Markup

from detectors.rules import SEVERITIES
from graph.queries import (
    COL_SUBJECT,
    AccessPath,
    Neighbourhood,
    PictureEdge,
    PictureNode,
    contract_access_paths,
    contract_ended,
    is_departed,
    neighbourhood,
    sponsor_of,
)
from reports.escaping import strip_control
from scanner.records import Contract

SEVERITY_COLOURS = {"critical": "#b42318", "high": "#e8590c", "medium": "#d4a106", "low": "#2f6fde", "info": "#667085"}
TREND_SWEEPS = 14


# --- what the page shows, as plain values -------------------------------------------------


@dataclass
class ContractView:
    contract: Contract
    ended: bool
    days_left: int | None  # negative: ended that many days ago
    sponsor: str | None
    sponsor_note: str  # departed / unknown person / ""
    paths: list[AccessPath]
    findings: dict[str, list[dict[str, Any]]]  # subject key -> open findings on it

    @property
    def live(self) -> int:
        return len(self.paths)

    @property
    def urgent(self) -> bool:
        return self.ended and self.live > 0


@dataclass
class OwnerTask:
    finding: dict[str, Any]
    because: str  # why this person gets the task: owner, sponsor of C-100, manager of departed owner ...


@dataclass
class OwnerView:
    who: str  # an email, or "" for nobody
    tasks: list[OwnerTask] = field(default_factory=list)

    @property
    def worst(self) -> int:
        order = {s: i for i, s in enumerate(SEVERITIES)}
        return min(order.get(t.finding["severity"], 9) for t in self.tasks)


def contract_views(g: nx.MultiDiGraph, now: datetime, open_findings: list[dict[str, Any]]) -> list[ContractView]:
    """Every contract with its sponsor and live access paths; ended ones with live access first."""
    by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in open_findings:
        by_subject[f["subject"]["key"]].append(f)
    views = []
    today = now.date()
    for _key, data in g.nodes(data=True):
        c = data["record"]
        if not isinstance(c, Contract):
            continue
        sponsor = sponsor_of(g, c.key)
        note = ""
        if sponsor is not None and is_departed(sponsor, today):
            note = "departed"
        elif sponsor is not None and sponsor.source == "inferred":
            note = "unknown person"
        paths = contract_access_paths(g, c.key, now)
        days_left = (c.end - today).days if c.end else None
        views.append(ContractView(c, contract_ended(c, today), days_left, c.sponsor_email, note, paths,
                                  {p.key: by_subject.get(p.key, []) for p in paths}))

    def order(v: ContractView):
        return (not v.urgent, v.ended, v.days_left if v.days_left is not None else 10**6, v.contract.contract_id)

    return sorted(views, key=order)


def action_owner(f: dict[str, Any]) -> tuple[str, str]:
    """Who must act on a finding, and why them: a current owner, else a current sponsor, else a manager."""
    owners = f.get("owners", [])
    sponsors = f.get("sponsors", [])
    for o in owners:
        if o.get("email") and o.get("status") == "active":
            return o["email"], f"{o.get('role') or 'owner'}"
    for s in sponsors:
        if s.get("email") and s.get("status") == "active":
            return s["email"], f"sponsor of contract {s['contract']}"
    for o in owners:
        if o.get("email") and o.get("status") == "departed" and o.get("manager"):
            return o["manager"], f"manager of departed owner {o['email']}"
    for s in sponsors:
        if s.get("email") and s.get("status") == "departed" and s.get("manager"):
            return s["manager"], f"manager of departed sponsor {s['email']} (contract {s['contract']})"
    return "", "no accountable person resolves: security team to assign an owner"


def owner_views(open_findings: list[dict[str, Any]]) -> list[OwnerView]:
    """Open findings grouped by the person who must act; the unassigned last."""
    views: dict[str, OwnerView] = {}
    for f in open_findings:
        who, because = action_owner(f)
        views.setdefault(who, OwnerView(who)).tasks.append(OwnerTask(f, because))
    return sorted(views.values(), key=lambda v: (v.who == "", v.worst, -len(v.tasks), v.who))


def first_sentence(text: str) -> str:
    """The first clause of a remediation, without its parenthesised detail: the task in a few words."""
    head = re.sub(r"\s*\([^)]*\)", "", text).split("; ")[0].split(". ")[0].rstrip(".").rstrip(",")
    return head + "."


# --- trend chart --------------------------------------------------------------------------


def trend_points(sweeps: list[Any], upto: int) -> list[dict[str, Any]]:
    """Open findings by severity for the completed sweeps up to ``upto``, oldest first."""
    points = []
    for s in sorted(sweeps, key=lambda s: s.id):
        if s.id > upto or s.status != "complete":
            continue
        summary = s.summary or {}
        points.append({"id": s.id, "clock": s.clock, "open": dict(summary.get("open_by_severity", {})),
                       "changes": dict(summary.get("changes", {}))})
    return points[-TREND_SWEEPS:]


def trend_chart(points: list[dict[str, Any]], width: int = 560, height: int = 190) -> dict[str, Any]:
    """Stacked bars (one per sweep, severities stacked) with a y axis of round ticks."""
    left, right, top, bottom = 34, 8, 20, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([sum(p["open"].values()) for p in points] + [1])
    step = _nice_step(peak)
    ymax = step * -(-peak // step)
    ticks = [{"y": top + plot_h - plot_h * v / ymax, "label": v} for v in range(0, ymax + 1, step)]
    n = max(len(points), 1)
    slot = plot_w / n
    bar_w = min(34.0, slot * 0.62)
    bars = []
    for i, p in enumerate(points):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        segments = []
        for sev in reversed(SEVERITIES):  # the worst on top
            count = p["open"].get(sev, 0)
            if not count:
                continue
            h = plot_h * count / ymax
            y -= h
            segments.append({"y": round(y, 1), "h": round(h, 1), "colour": SEVERITY_COLOURS[sev], "title": f"{sev}: {count}"})
        total = sum(p["open"].values())
        clock = p["clock"]
        bars.append({"x": round(x, 1), "w": round(bar_w, 1), "cx": round(x + bar_w / 2, 1), "segments": segments, "total": total,
                     "top": round(y, 1), "label": f"#{p['id']}", "date": clock.strftime("%d %b") if clock else ""})
    return {"width": width, "height": height, "left": left, "right": width - right, "base": top + plot_h, "ticks": ticks,
            "bars": bars}


def _nice_step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if peak / step <= 5:
            return step
    return 10 ** len(str(peak))


# --- neighbourhood picture ------------------------------------------------------------------

BOX_W, BOX_H, ROW_GAP, COL_GAP, PAD = 136, 36, 20, 84, 14
LABEL_CHARS = 21


def picture_layout(n: Neighbourhood) -> dict[str, Any]:
    """Boxes in columns (people → links → subject → account → resources), edges as curves between them.

    Only the columns that hold something are drawn, at a fixed pitch, so edges
    always run left to right and their labels have room.
    """
    columns = sorted({node.column for node in n.nodes})
    per_col: dict[int, list[PictureNode]] = defaultdict(list)
    for node in n.nodes:
        per_col[node.column].append(node)
    for col in per_col.values():
        col.sort(key=lambda node: (node.kind == "more", node.kind, node.label.casefold()))
    rows = max(len(v) for v in per_col.values())
    width = PAD * 2 + len(columns) * BOX_W + (len(columns) - 1) * COL_GAP
    height = PAD * 2 + rows * BOX_H + (rows - 1) * ROW_GAP + 8  # +8: room for the kind mark above the top box
    xs = {c: PAD + i * (BOX_W + COL_GAP) for i, c in enumerate(columns)}
    pos: dict[str, tuple[float, float]] = {}
    boxes = []
    for c in columns:
        nodes = per_col[c]
        block = len(nodes) * BOX_H + (len(nodes) - 1) * ROW_GAP
        y0 = (height + 8 - block) / 2
        for i, node in enumerate(nodes):
            x, y = xs[c], y0 + i * (BOX_H + ROW_GAP)
            pos[node.key] = (x, y)
            label = strip_control(node.label)
            short = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
            boxes.append({"x": round(x, 1), "y": round(y, 1), "w": BOX_W, "h": BOX_H, "label": short, "full": label,
                          "kind": node.kind, "note": node.note, "subject": node.column == COL_SUBJECT and node.key == n.subject,
                          "tx": round(x + BOX_W / 2, 1), "ty": round(y + (15 if node.note else 22), 1), "ny": round(y + 29, 1)})
    edges = []
    labelled: set[tuple[str, str]] = set()
    placed: list[tuple[float, float]] = []
    for e in n.edges:
        if e.src not in pos or e.dst not in pos:
            continue
        geo = _edge_geometry(e, pos[e.src], pos[e.dst])
        if (e.src, e.label) in labelled:
            geo["label"] = ""  # a fan-out (org contains 5 repos) says "contains" once
        else:
            labelled.add((e.src, e.label))
            while any(abs(geo["lx"] - x) < 60 and abs(geo["ly"] - y) < 11 for x, y in placed):
                geo["ly"] = round(geo["ly"] + 11, 1)  # two labels where edges cross: move this one down a line
            placed.append((geo["lx"], geo["ly"]))
        edges.append(geo)
    return {"width": width, "height": round(height), "boxes": boxes, "edges": edges}


def _edge_geometry(e: PictureEdge, src: tuple[float, float], dst: tuple[float, float]) -> dict[str, Any]:
    x1, y1 = src[0] + BOX_W, src[1] + BOX_H / 2
    x2, y2 = dst[0], dst[1] + BOX_H / 2
    if x2 <= x1:  # same column or backwards: leave from the bottom, enter at the top
        x1, y1 = src[0] + BOX_W / 2, src[1] + BOX_H
        x2, y2 = dst[0] + BOX_W / 2, dst[1]
        d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + 20:.1f} {x2:.1f},{y2 - 20:.1f} {x2:.1f},{y2 - 2:.1f}"
    else:
        mid = (x1 + x2) / 2
        d = f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2 - 2:.1f},{y2:.1f}"
    return {"d": d, "label": strip_control(e.label), "lx": round((x1 + x2) / 2, 1), "ly": round((y1 + y2) / 2 - 4, 1)}


def neighbourhood_from_finding(f: dict[str, Any]) -> Neighbourhood:
    """A picture from the finding alone, for a subject the current graph no longer holds."""
    from graph.queries import COL_LINKS, COL_PEOPLE, COL_RESOURCES

    subj = f["subject"]
    nodes = [PictureNode(subj["key"], subj["name"], "credential", COL_SUBJECT)]
    edges = []
    for o in f.get("owners", []):
        label = o.get("email") or o.get("account") or "?"
        nodes.append(PictureNode(f"owner:{label}", label, "person", COL_PEOPLE, "departed" if o.get("status") == "departed" else ""))
        edges.append(PictureEdge(f"owner:{label}", subj["key"], o.get("role") or "owner"))
    for c in f.get("contracts", []):
        nodes.append(PictureNode(f"contract:{c['id']}", f"{c['id']} {c['counterparty']}", "contract", COL_LINKS,
                                 "ended" if c.get("status") == "ended" else ""))
        edges.append(PictureEdge(f"contract:{c['id']}", subj["key"], "covers"))
    for r in f.get("reach", [])[:6]:
        nodes.append(PictureNode(r["key"], r["name"], "resource", COL_RESOURCES))
        edges.append(PictureEdge(subj["key"], r["key"], r["level"]))
    seen: dict[str, PictureNode] = {}
    for node in nodes:
        seen.setdefault(node.key, node)
    return Neighbourhood(subj["key"], tuple(seen.values()), tuple(dict.fromkeys(edges)))


# --- rendering --------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,  # every {{ }} is HTML-escaped; tenant text is untrusted (DESIGN.md invariant 4)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["sevcolour"] = lambda s: SEVERITY_COLOURS.get(s, "#667085")
    env.filters["first_sentence"] = first_sentence
    env.filters["clean"] = lambda v: strip_control(str(v)) if v is not None else ""
    env.filters["anchor"] = lambda fp: f"f-{fp}"
    return env


def _stylesheet() -> str:
    return (resources.files("reports") / "templates" / "report.css").read_text(encoding="utf-8")


def _csp(css: str) -> str:
    """No script, no fetch, no frames: the only thing the page may use is its own stylesheet (by hash)."""
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode()
    return f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; base-uri 'none'; form-action 'none'"


def render_html(
    report: dict[str, Any],
    *,
    trend: list[dict[str, Any]],
    contracts: list[ContractView],
    pictures: dict[str, Neighbourhood],
    generated_at: datetime | None = None,
) -> str:
    """The report page for one sweep's report data (see :func:`reports.files.sweep_report`)."""
    findings = report["findings"]
    open_f = [f for f in findings if f["status"] == "open"]
    resolved = [f for f in findings if f.get("change") == "resolved"]
    open_by_sev = {s: sum(1 for f in open_f if f["severity"] == s) for s in SEVERITIES}
    changes = defaultdict(int, report["summary"].get("changes", {}))
    gaps = [c for c in report["coverage"] if not c["ok"]]
    by_source: dict[str, list[int]] = {}
    for c in report["coverage"]:
        counts = by_source.setdefault(c["source"], [0, 0, 0])  # read, not read, records
        counts[0 if c["ok"] else 1] += 1
        counts[2] += c.get("count") or 0
    css = _stylesheet()
    layouts = {fp: picture_layout(n) for fp, n in pictures.items()}
    env = _environment()
    return env.get_template("report.html.j2").render(
        report=report,
        sweep=report["sweep"],
        summary=report["summary"],
        severities=[s for s in SEVERITIES if s != "info" or open_by_sev.get("info")],
        open_findings=open_f,
        open_by_sev=open_by_sev,
        open_total=len(open_f),
        new=[f for f in open_f if f.get("change") in ("new", "regressed")],
        resolved=resolved,
        changes=changes,
        unrefreshed=[f for f in open_f if not f.get("refreshed", True)],
        gaps=gaps,
        inventories=len(report["coverage"]),
        coverage_by_source=sorted(by_source.items()),
        chart=trend_chart(trend),
        trend=trend,
        contracts=contracts,
        urgent_contracts=[c for c in contracts if c.urgent],
        owners=owner_views(open_f),
        pictures=layouts,
        css=Markup(css),  # our own stylesheet, hashed into the CSP; never tenant text
        csp=_csp(css),
        generated_at=(generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC"),
        colours=SEVERITY_COLOURS,
    )


def html_report(config, store, sweep_id: int, report: dict[str, Any] | None = None) -> str:
    """Gather everything the page needs from the store (and the graph rebuilt from it) and render it."""
    from graph.snapshot import graph_from_store
    from reports.files import sweep_report

    report = report or sweep_report(store, sweep_id)
    clock = datetime.fromisoformat(report["sweep"]["clock"]) if report["sweep"]["clock"] else datetime.now(timezone.utc)
    g = graph_from_store(store, config)
    open_f = [f for f in report["findings"] if f["status"] == "open"]
    pictures = {}
    for f in open_f:
        key = f["subject"]["key"]
        pictures[f["fingerprint"]] = neighbourhood(g, key, clock) if key in g else neighbourhood_from_finding(f)
    trend = trend_points(store.sweeps(limit=TREND_SWEEPS + 5), sweep_id)
    return render_html(report, trend=trend, contracts=contract_views(g, clock, open_f), pictures=pictures)

"""``nhiscan graph ...`` over a store filled by a real sweep of the demo estate (sandbox, real clients).

The contract inventory is checked against an expectation derived straight from
the graph's COVERS edges (not through the command's own query), plus the
access paths the estate's GitHub section is known to give Globex.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import networkx as nx
import pytest
import yaml
from click.testing import CliRunner

from detectors.rules import is_active
from graph.build import AUTHENTICATES_AS, CAN_ACCESS, CONTAINS, COVERS, build_graph
from graph.queries import contract_access_paths
from graph.snapshot import graph_from_store
from sandbox import Sandbox, generate_app_key_pair
from scanner.cli import main
from scanner.config import load_config
from scanner.demo import DEMO_APP_ID, bundled_estate, prepare
from scanner.records import Account, Contract, Credential, MatchRules, Status
from scanner.store import Store
from scanner.sweep import run_sweep

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
HOSTILE = "<img src=x onerror=alert(1)> | *deploy*"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A config whose store holds one complete sweep of the bundled demo estate."""
    workdir = tmp_path_factory.mktemp("graph-cli")
    private, public = generate_app_key_pair()
    data = yaml.safe_load(bundled_estate().read_text())
    with Sandbox(data, now=NOW, app_keys={DEMO_APP_ID: public.decode()}) as sb:
        config_path = prepare(sb, workdir, private, vendors=set())
        config = load_config(config_path)
        outcome = run_sweep(config, now=NOW, write_reports=False)
    return config_path, config, outcome


def run(config_path, *args):
    result = CliRunner().invoke(main, ["graph", *args, "-c", str(config_path)], catch_exceptions=False)
    return result


def expected_contract_paths(g: nx.MultiDiGraph, contract_key: str) -> set[str]:
    """Straight from the edges: what the contract COVERS, plus credentials authenticating as a covered account; live only."""
    covered = {dst for _s, dst, d in g.out_edges(contract_key, data=True) if d["rel"] == COVERS}
    acting = {src for acc in covered for src, _d, d in g.in_edges(acc, data=True) if d["rel"] == AUTHENTICATES_AS}
    return {k for k in covered | acting if is_active(g.nodes[k]["record"], NOW)}


def test_contract_lists_exactly_the_access_paths_the_estate_gives_globex(swept):
    config_path, config, _outcome = swept
    result = run(config_path, "contract", "C-100", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    listed = {p["key"] for p in data["access_paths"]}
    g = graph_from_store(Store(config.store_url), config)
    assert listed == expected_contract_paths(g, "contracts:contract:C-100")
    # The GitHub section's Globex paths, by name: the App installation, the collaborator, the deploy key.
    names = {(p["source"], p["type"], p["name"]) for p in data["access_paths"]}
    assert {("github", "app_installation", "globex-ci"), ("github", "deploy_key", "globex-deploy")} <= names
    assert "github:user:globex-dev" in listed
    # Every other vendor the demo sweeps whose estate section gives Globex something shows at least one Globex path.
    estate = yaml.safe_load(bundled_estate().read_text())
    kind_of_source = {src.name: kind for kind, src in config.sources.all()}
    for kind in set(kind_of_source.values()) - {"github"}:
        if "globex" in json.dumps(estate.get(kind, {})).lower():
            from_vendor = [p for p in data["access_paths"] if kind_of_source.get(p["source"]) == kind]
            assert any("globex" in (p["name"] + p["key"]).lower() for p in from_vendor), kind
    assert all(p["live"] for p in data["access_paths"])
    assert data["contract"] == {"id": "C-100", "key": "contracts:contract:C-100", "counterparty": "Globex", "kind": "vendor",
                                "start": data["contract"]["start"], "end": (NOW.date() - timedelta(days=45)).isoformat(),
                                "status": "ended", "sponsor": "bob@acme.example"}
    # Every path says why it is tied to Globex.
    assert all(any("C-100" in e or "covers" in e for e in p["evidence"]) for p in data["access_paths"])


def test_contract_inventory_covers_every_contract_ended_finding(swept):
    """Another angle on "no less": each access path the contract-ended rule flagged is in the inventory."""
    config_path, _config, outcome = swept
    flagged = {f["subject"]["key"] for f in outcome.findings if f["rule_id"] == "contract-ended"
               and any(c["id"] == "C-100" for c in f["contracts"])}
    data = json.loads(run(config_path, "contract", "c-100", "--format", "json").output)
    assert flagged and flagged <= {p["key"] for p in data["access_paths"]}


def test_contract_table_and_unknown_contract(swept):
    config_path, _c, _o = swept
    result = run(config_path, "contract", "C-100")
    assert result.exit_code == 0
    assert "C-100 Globex" in result.output and "globex-ci" in result.output and "ended" in result.output
    result = run(config_path, "contract", "C-999")
    assert result.exit_code == 2
    assert "no contract 'C-999'" in result.output and "C-100" in result.output


def test_contract_of_a_running_relationship_is_not_globex(swept):
    config_path, config, _o = swept
    data = json.loads(run(config_path, "contract", "C-500", "--format", "json").output)
    keys = {p["key"] for p in data["access_paths"]}
    g = graph_from_store(Store(config.store_url), config)
    assert keys == expected_contract_paths(g, "contracts:contract:C-500")
    assert "github:installation:acme/70004" in keys and not any("globex" in k for k in keys)


def test_who_owns_gives_owner_and_sponsor_with_evidence(swept):
    config_path, _c, _o = swept
    result = run(config_path, "who-owns", "globex-deploy", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["subject"]["type"] == "deploy_key"
    owner = data["owners"][0]
    assert owner["email"] == "dev@globex.example" and owner["role"] == "creator"
    assert owner["evidence"][0].startswith("deploy key added_by (GitHub API): globex-dev")
    assert owner["status"] == "unknown person"  # Globex's developer is in no people source
    assert data["sponsors"] == [{"contract": "C-100", "counterparty": "Globex", "contract_end": (NOW.date() - timedelta(days=45)).isoformat(),
                                 "email": "bob@acme.example", "status": "active", "statuses": {"hr": "active"},
                                 "evidence": data["sponsors"][0]["evidence"]}]
    assert "contract C-100 sponsor: bob@acme.example" in data["sponsors"][0]["evidence"]


def test_who_owns_departed_owner_by_key_and_table(swept):
    config_path, config, _o = swept
    g = graph_from_store(Store(config.store_url), config)
    key = next(k for k, d in g.nodes(data=True) if d["name"] == "legacy-backup")
    data = json.loads(run(config_path, "who-owns", key, "--format", "json").output)
    assert data["owners"][0]["email"] == "eve@acme.example" and data["owners"][0]["status"] == "departed"
    table = run(config_path, "who-owns", "legacy-backup").output
    assert "eve@acme.example" in table and "departed" in table


def test_reach_gives_transitive_paths_along_real_edges(swept):
    config_path, config, _o = swept
    data = json.loads(run(config_path, "reach", "globex-ci", "--format", "json").output)
    g = graph_from_store(Store(config.store_url), config)
    subject = data["subject"]["key"]
    by_name = {r["name"]: r for r in data["reach"]}
    assert {"acme", "acme/api", "acme/web", "acme/infra", "acme/data-pipeline"} <= set(by_name)
    assert by_name["acme/api"]["path"] == [subject, "github:org:acme", "github:repo:acme/api"]
    for r in data["reach"]:
        assert r["path"][0] == subject and r["path"][-1] == r["key"]
        for a, b in zip(r["path"], r["path"][1:]):
            rels = {d["rel"] for d in g.get_edge_data(a, b).values()}
            assert rels & {CAN_ACCESS, CONTAINS, AUTHENTICATES_AS}, (a, b)
    table = run(config_path, "reach", "globex-ci").output
    assert "globex-ci → acme → acme/api" in table


def test_subject_errors_name_the_candidates(swept):
    config_path, _c, _o = swept
    result = run(config_path, "reach", "nhiscan")  # the scanner's user and its App installation share the name
    assert result.exit_code == 2
    assert "ambiguous" in result.output
    assert "github:user:nhiscan-reader" in result.output and "github:installation:acme/90001" in result.output
    result = run(config_path, "who-owns", "no-such-thing")
    assert result.exit_code == 2 and "no record has the key, name or login 'no-such-thing'" in result.output


def test_hostile_name_is_inert_on_the_terminal(swept):
    config_path, _c, _o = swept
    result = run(config_path, "who-owns", HOSTILE)
    assert result.exit_code == 0, result.output
    assert "alice@acme.example" in result.output


def test_export_graphml_and_json_round_trip_without_secret_hashes(swept):
    config_path, config, _o = swept
    g = graph_from_store(Store(config.store_url), config)
    result = run(config_path, "export", "--format", "graphml")
    assert result.exit_code == 0
    back = nx.read_graphml(io.BytesIO(result.output.encode("utf-8")))
    assert back.number_of_nodes() == g.number_of_nodes() and back.number_of_edges() == g.number_of_edges()
    hostile = [k for k, d in back.nodes(data=True) if d.get("name") == HOSTILE]
    assert len(hostile) == 1 and back.nodes[hostile[0]]["type"] == "deploy_key"
    assert {d["rel"] for _a, _b, d in back.edges(data=True)} >= {"COVERS", "OWNS", "CAN_ACCESS", "SPONSORED_BY"}
    result = run(config_path, "export", "--format", "json")
    data = json.loads(result.output)
    again = nx.node_link_graph(data, edges="links")
    assert again.number_of_nodes() == g.number_of_nodes()
    for text in (result.output, run(config_path, "export").output):
        assert "value_hmac" not in text and "secret_hmac" not in text and '"preview"' not in text


def test_export_to_file(swept, tmp_path):
    config_path, _c, _o = swept
    out = tmp_path / "g.graphml"
    result = run(config_path, "export", "-o", str(out))
    assert result.exit_code == 0 and out.read_text().startswith("<?xml")


def test_graph_without_a_sweep_says_so(tmp_path):
    (tmp_path / "config.toml").write_text(f'[store]\nurl = "sqlite:///{tmp_path}/empty.db"\n')
    result = run(tmp_path / "config.toml", "reach", "x")
    assert result.exit_code == 2 and "nhiscan scan" in result.output


# --- contract_access_paths on plain records -------------------------------------------------


def test_contract_paths_include_tokens_acting_as_a_covered_account_and_skip_dead_ones():
    contract = Contract(key="contracts:contract:C-9", source="contracts", inventory="contracts:register", name="C-9 Vendor",
                        contract_id="C-9", counterparty="Vendor", contract_type="vendor", start=None, end=NOW.date(), status="ended",
                        sponsor_email=None, match=MatchRules(name_patterns=("vendor-*",)))
    bot = Account(key="x:account:vendor-bot", source="x", inventory="x:users", name="vendor-bot", login="vendor-bot",
                  account_type="bot", is_human=False)
    token = Credential(key="x:token:1", source="x", inventory="x:tokens", name="sync token", credential_type="api_token",
                       account_key=bot.key)
    expired = Credential(key="x:token:2", source="x", inventory="x:tokens", name="old token", credential_type="api_token",
                         account_key=bot.key, expires_at=NOW - timedelta(days=1))
    revoked = Credential(key="x:token:3", source="x", inventory="x:tokens", name="vendor-key", credential_type="api_token",
                         status=Status.REVOKED)
    other = Credential(key="x:token:4", source="x", inventory="x:tokens", name="internal", credential_type="api_token")
    g = build_graph([contract, bot, token, expired, revoked, other])
    live = {p.key: p for p in contract_access_paths(g, contract.key, NOW)}
    assert set(live) == {bot.key, token.key}
    assert live[token.key].via == bot.key and "authenticates as vendor-bot" in live[token.key].evidence[0]
    everything = {p.key: p.live for p in contract_access_paths(g, contract.key, NOW, include_inactive=True)}
    assert everything == {bot.key: True, token.key: True, expired.key: False, revoked.key: False}

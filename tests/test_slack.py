"""Slack: the emulator, the collector's pure transforms, the collector over real HTTP, the demo.

* Transforms are checked on recorded-shape payloads (Slack's documented examples).
* The emulator and the collector are driven by the real ``slack_sdk.WebClient`` over HTTP against
  the sandbox on 127.0.0.1; nothing of ours is mocked.
* Every body the emulator sends during a full collection and an alert round is validated against
  the pinned Slack description (``shared/specs/slack-web.swagger2.json``) per method.
* The demo estate is swept end to end (GitHub + Slack) and its Slack situations checked.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from sandbox import Sandbox, generate_app_key_pair, load_estate
from sandbox.estate import EstateError
from sandbox.slack import SlackFault
from scanner.collectors.slack import (
    APPROVED_APPS_NEED_ORG_ADMIN,
    INSTALLER_EVIDENCE,
    InstallHistory,
    collect,
    is_sensitive_scope,
    scopes_privilege,
    transform_app_approvals,
    transform_apps,
    transform_bots,
    transform_integration_logs,
    transform_users,
)
from scanner.config import parse_config
from scanner.demo import DEMO_APP_ID, bundled_estate, prepare
from scanner.records import Account, Grant, Privilege, Resource, Status

SPEC_FILE = Path(__file__).resolve().parents[2] / "shared" / "specs" / "slack-web.swagger2.json"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)

BOT = "xoxb-100000000001-200000000001-botScannerToken"
ADMIN = "xoxp-100000000001-200000000002-orgAdminToken"
NARROW = "xoxb-100000000001-200000000003-chatOnlyToken"
FLAKY = "xoxb-100000000001-200000000004-flakyToken"
THROTTLED = "xoxb-100000000001-200000000005-throttledToken"
BROKEN = "xoxb-100000000001-200000000006-brokenToken"
USER = "xoxp-100000000001-200000000007-plainUserToken"
ALL_TOKENS = [BOT, ADMIN, NARROW, FLAKY, THROTTLED, BROKEN, USER]
BOT_SCOPES = ["users:read", "users:read.email", "team:read", "im:write", "mpim:write", "chat:write", "channels:read", "groups:read", "im:read"]
PEOPLE = [f"person{i:02d}" for i in range(10)]


def estate_data() -> dict[str, Any]:
    """A small Grid workspace: ten people, three apps with bots, an install log, faulty tokens."""
    return {"slack": {
        "team": {"id": "T0TEST00001", "name": "Test Co", "domain": "testco", "email_domain": "test.example",
                 "enterprise_id": "E0TEST00001"},
        "max_page_size": 3,
        "tokens": [
            {"token": BOT, "type": "bot", "user": "scanner-bot", "scopes": BOT_SCOPES},
            {"token": ADMIN, "type": "org_admin", "user": "person00", "scopes": ["admin", "admin.apps:read", "users:read"]},
            {"token": NARROW, "type": "bot", "user": "scanner-bot", "scopes": ["chat:write"]},
            {"token": FLAKY, "type": "bot", "user": "scanner-bot", "scopes": BOT_SCOPES,
             "faults": [{"method": "users.list", "fault": "rate_limited", "times": 1, "retry_after": 1, "after": 1}]},
            {"token": THROTTLED, "type": "bot", "user": "scanner-bot", "scopes": BOT_SCOPES,
             "faults": [{"method": "users.list", "fault": "rate_limited", "retry_after": 0}]},
            {"token": BROKEN, "type": "bot", "user": "scanner-bot", "scopes": BOT_SCOPES,
             "faults": [{"method": "bots.info", "fault": "server_error"}, {"method": "team.info", "fault": "malformed_json"}]},
            {"token": USER, "type": "user", "user": "person01", "scopes": ["users:read", "admin.apps:read"]},
        ],
        "users": [{"name": n, "real_name": f"Person {n[-2:]}", "email": f"{n}@test.example", "has_2fa": i % 2 == 0,
                   "is_admin": i == 0, "deleted": i == 9} for i, n in enumerate(PEOPLE)]
        + [{"name": "mangled", "override": {"id": 12345}}],
        "apps": [
            {"name": "scanner", "scopes": ["users:read", "chat:write"]},
            {"name": "vendor-sync", "is_internal": False, "scopes": ["chat:write", "files:read"], "user_scopes": ["admin.users:write"]},
            {"name": "banned", "approval": "restricted", "is_internal": False, "scopes": ["files:write"]},
            {"name": "gone", "approval": "none", "scopes": ["chat:write"]},
        ],
        "bots": [{"name": "scanner-bot", "app": "scanner"}, {"name": "vendor-bot", "app": "vendor-sync"},
                 {"name": "gone-bot", "app": "gone", "deleted": True}],
        "integration_logs": [
            {"app": "scanner", "user": "person00", "change_type": "added", "date": "-30d"},
            {"app": "vendor-sync", "user": "person02", "change_type": "added", "date": "-300d"},
            {"app": "gone", "user": "person03", "change_type": "added", "date": "-400d"},
            {"app": "gone", "user": "person00", "change_type": "removed", "date": "-100d"},
        ],
        "channels": [
            {"name": "general", "general": True, "creator": "person00", "members": ["person00", "person01"], "purpose": "all"},
            {"name": "alerts", "creator": "person00", "members": ["person00", "scanner-bot"]},
            {"name": "secret", "private": True, "creator": "person00", "members": ["person00", "scanner-bot"]},
            {"name": "old", "archived": True, "creator": "person00", "members": ["scanner-bot"]},
        ],
    }}


@pytest.fixture(scope="module")
def sb():
    with Sandbox(estate_data(), now=NOW) as sandbox:
        yield sandbox


@pytest.fixture
def fresh(sb: Sandbox) -> Sandbox:
    """The shared sandbox with its Slack estate reloaded: faults, rate windows, DMs, messages and
    the request log start afresh (only Slack is reloaded: the other emulators are not used here)."""
    sb.apps["slack"].set_estate(load_estate(estate_data(), now=NOW))
    return sb


def client(sb: Sandbox, token: str, *, retry: bool = False) -> WebClient:
    c = WebClient(token=token, base_url=sb.url("slack"), timeout=10)
    if retry:
        c.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    return c


def slack_error(fn, *args, **kwargs) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        fn(*args, **kwargs)
    return info.value


def source_config(tmp_path: Path, sb: Sandbox, token: str, admin: str | None = None, **extra: Any):
    (tmp_path / "token").write_text(token)
    src: dict[str, Any] = {"name": "slk", "base_url": sb.url("slack"), "token_file": "token", "timeout": 5, "max_retries": 2, **extra}
    if admin:
        (tmp_path / "admin-token").write_text(admin)
        src["admin_token_file"] = "admin-token"
    config = parse_config({"sources": {"slack": [src]}}, base_dir=tmp_path)
    return config.sources.slack[0], config


def by_inventory(result) -> dict[str, Any]:
    return {c.inventory.rsplit(":", 1)[1]: c for c in result.coverage}


# =============================================================================================
# Pure transforms on recorded-shape payloads (Slack's documented examples)

SPENGLER = {  # users.list example member
    "color": "9f69e7", "deleted": False, "has_2fa": False, "id": "W012A3CDE", "is_admin": True, "is_app_user": False,
    "is_bot": False, "is_owner": False, "is_primary_owner": False, "is_restricted": False, "is_ultra_restricted": False,
    "name": "spengler",
    "profile": {"avatar_hash": "ge3b51ca72de", "display_name": "spengler", "display_name_normalized": "spengler",
                "email": "spengler@ghostbusters.example.com", "real_name": "Egon Spengler",
                "real_name_normalized": "Egon Spengler", "status_emoji": ":books:", "status_text": "Print is dead",
                "team": "T012AB3C4"},
    "real_name": "spengler", "team_id": "T012AB3C4", "tz": "America/Los_Angeles", "tz_label": "Pacific Daylight Time",
    "tz_offset": -25200, "updated": 1502138686,
}
BOT_USER = {
    "id": "U0BEFOREBOT", "team_id": "T012AB3C4", "name": "beforebot", "deleted": False, "real_name": "Before Bot",
    "profile": {"bot_id": "B061F7JD2", "api_app_id": "A161CLERW", "always_active": True, "real_name": "Before Bot",
                "display_name": "", "avatar_hash": "x", "real_name_normalized": "Before Bot", "display_name_normalized": "",
                "title": "", "phone": "", "skype": "", "status_text": "", "status_emoji": "", "fields": None},
    "is_bot": True, "is_app_user": False, "updated": 1449272004,
}
SLACKBOT = {"id": "USLACKBOT", "name": "slackbot", "deleted": False, "is_bot": False, "is_app_user": False, "profile": {}, "updated": 0}
BOTS_INFO = {"app_id": "A161CLERW", "deleted": False, "id": "B061F7JD2", "name": "beforebot", "updated": 1449272004, "user_id": "U012ABCDEF",
             "icons": {"image_36": "https://...", "image_48": "https://...", "image_72": "https://..."}}
APPROVED = {  # admin.apps.approved.list example item
    "app": {"additional_info": "", "app_directory_url": "https://myteam.enterprise.slack.com/apps/A0W7UKG8E-my-test-app",
            "app_homepage_url": "https://www.slack.com", "description": "test app", "help_url": "https://www.slack.com",
            "id": "A0W7UKG8E", "is_app_directory_approved": False, "is_internal": False, "name": "My Test App",
            "privacy_policy_url": "https://www.slack.com"},
    "date_updated": 1574296707, "last_resolved_by": {"actor_id": "W0G82F4FD", "actor_type": "user"},
    "scopes": [{"description": "Add the ability for people to direct message or mention @my_test_app", "is_sensitive": True,
                "name": "bot", "token_type": "bot"}],
}
RESTRICTED = {  # admin.apps.restricted.list example item
    "app": {"app_directory_url": "https://myteam.enterprise.slack.com/apps/A0FDLP8M2L-my-test-app", "id": "A0FDLP8M2L",
            "is_app_directory_approved": True, "is_internal": False, "name": "My Test App"},
    "date_updated": 1574296721, "last_resolved_by": {"actor_id": "W0G82LMFD", "actor_type": "user"},
    "scopes": [{"description": "Upload, edit, and delete files", "is_sensitive": True, "name": "files:write:user", "token_type": "user"}],
}
LOGS = [  # team.integrationLogs, newest first, as documented
    {"service_id": "3456789012", "service_type": "Airbrake", "user_id": "U3456CDEF", "user_name": "Joey",
     "channel": "C1234567890", "date": "1392163202", "change_type": "disabled", "scope": "incoming-webhook"},
    {"app_id": "A161CLERW", "app_type": "Before Bot", "user_id": "U2345BCDE", "user_name": "Billy", "date": "1392163201",
     "change_type": "added", "scope": "chat:write:user,channels:read"},
    {"app_id": "A161CLERW", "app_type": "Before Bot", "user_id": "U9999ZZZZ", "user_name": "Old", "date": "1292163201",
     "change_type": "added", "scope": "chat:write:user"},
]


def test_users_become_people_bots_and_a_workspace():
    history = {"A161CLERW": InstallHistory("A161CLERW", "Before Bot", "U2345BCDE", "Billy", None, "added", None)}
    batch = transform_users("slk", "T012AB3C4", [SPENGLER, BOT_USER, SLACKBOT], team_name="Ghostbusters", installs=history)
    assert not batch.skipped
    by_key = {r.key: r for r in batch.records}
    ws = by_key["slk:workspace:T012AB3C4"]
    assert isinstance(ws, Resource) and ws.resource_type == "workspace" and ws.name == "Ghostbusters"
    human = by_key["slk:user:W012A3CDE"]
    assert isinstance(human, Account) and human.is_human and human.account_type == "user"
    assert human.email == "spengler@ghostbusters.example.com" and human.mfa_enabled is False
    assert human.role == "admin" and human.privilege == Privilege.ADMIN and human.status == Status.ACTIVE
    bot = by_key["slk:user:U0BEFOREBOT"]
    assert bot.account_type == "bot" and not bot.is_human and bot.email is None
    assert bot.attributes["app_id"] == "A161CLERW" and bot.attributes["bot_id"] == "B061F7JD2"
    # The bot answers to whoever installed its app, and the finding must know the log was read.
    assert [(o.ref, o.evidence, o.role) for o in bot.owners] == [("slk:user:U2345BCDE", INSTALLER_EVIDENCE, "installer")]
    assert bot.attributes["derived_from"] == ["slk:T012AB3C4:integration_logs"]
    assert "slk:user:USLACKBOT" not in by_key, "Slackbot is Slack's own"
    grants = [r for r in batch.records if isinstance(r, Grant)]
    assert {g.subject_key for g in grants} == {"slk:user:W012A3CDE", "slk:user:U0BEFOREBOT"}
    assert all(r.inventory == "slk:T012AB3C4:users" for r in batch.records)


def test_user_roles_deletion_and_guests():
    owner = {**SPENGLER, "id": "U1", "is_primary_owner": True, "is_owner": True}
    gone = {"id": "U2", "name": "gone", "deleted": True, "profile": {"real_name": "Gone"}, "is_bot": False, "is_app_user": False, "updated": 1}
    guest = {**SPENGLER, "id": "U3", "is_admin": False, "is_restricted": True, "is_ultra_restricted": True, "has_2fa": True}
    recs = {r.key: r for r in transform_users("s", "T1", [owner, gone, guest]).records if isinstance(r, Account)}
    assert recs["s:user:U1"].privilege == Privilege.OWNER and recs["s:user:U1"].role == "primary_owner"
    assert recs["s:user:U2"].status == Status.DELETED and recs["s:user:U2"].mfa_enabled is None
    assert recs["s:user:U3"].role == "single_channel_guest" and recs["s:user:U3"].third_party
    assert recs["s:user:U3"].privilege == Privilege.READ and recs["s:user:U3"].mfa_enabled is True


def test_malformed_members_are_skipped_and_the_rest_kept():
    bad = [{**SPENGLER, "id": 12345}, {**SPENGLER, "id": "U9", "profile": "oops"}, "not an object", {"name": "noid"}]
    batch = transform_users("s", "T1", bad + [BOT_USER])
    assert len(batch.skipped) == 4
    assert "member #0" in batch.skipped[0] and "id is a int" in batch.skipped[0]
    assert "profile is a str" in batch.skipped[1]
    assert "missing id" in batch.skipped[3]
    assert "s:user:U0BEFOREBOT" in {r.key for r in batch.records}
    assert not any("spengler@" in why for why in batch.skipped), "warnings name fields, never values"


def test_install_history_from_integration_logs():
    installs, skipped = transform_integration_logs(LOGS + [{"app_type": "no id", "change_type": "added"}])
    assert list(installs) == ["A161CLERW"], "service entries are left out, not apps"
    h = installs["A161CLERW"]
    assert (h.installer_id, h.installer_name, h.last_change, h.status) == ("U2345BCDE", "Billy", "added", Status.ACTIVE)
    assert h.installed_at == datetime.fromtimestamp(1392163201, tz=timezone.utc)
    assert h.scopes == ("chat:write:user", "channels:read")
    assert len(skipped) == 1 and "missing app_id" in skipped[0]

    removed = [{"app_id": "A1", "app_type": "X", "user_id": "U1", "user_name": "a", "date": "200", "change_type": "removed", "scope": ""},
               {"app_id": "A1", "app_type": "X", "user_id": "U2", "user_name": "b", "date": "100", "change_type": "added", "scope": "chat:write"}]
    assert transform_integration_logs(removed)[0]["A1"].status == Status.DELETED
    # Same second: Slack lists newest first, so the first entry is the last change.
    same = [{**removed[0], "date": "100", "change_type": "disabled"}, removed[1]]
    assert transform_integration_logs(same)[0]["A1"].status == Status.SUSPENDED


@pytest.mark.parametrize("scopes, level", [
    (["admin.users:write", "users:read"], Privilege.ADMIN),
    (["admin"], Privilege.ADMIN),
    (["chat:write", "users:read"], Privilege.WRITE),
    (["files:write:user"], Privilege.WRITE),
    (["bot"], Privilege.WRITE),
    (["incoming-webhook"], Privilege.WRITE),
    (["users:read", "channels:history", "commands"], Privilege.READ),
    ([], Privilege.READ),
])
def test_scope_privilege(scopes, level):
    assert scopes_privilege(scopes) == level


@pytest.mark.parametrize("scope, sensitive", [
    ("admin.apps:read", True), ("users:write", True), ("channels:write.invites", True), ("files:write", True),
    ("chat:write.customize", True), ("channels:history", True), ("files:read", True),
    ("chat:write", False), ("users:read", False), ("team:read", False),
])
def test_sensitive_scopes(scope, sensitive):
    assert is_sensitive_scope(scope) is sensitive


def test_apps_from_approvals_bots_and_log():
    approvals, skipped = transform_app_approvals([APPROVED, {"app": {"name": "no id"}}], [RESTRICTED])
    assert len(skipped) == 1 and "missing id" in skipped[0]
    bots, bad = transform_bots([BOTS_INFO, {"id": "B1"}])
    assert len(bad) == 1 and "missing app_id" in bad[0]
    installs, _ = transform_integration_logs(LOGS)
    out = transform_apps("s", "T1", approvals=approvals, bots=bots, installs=installs)

    approved = {r.key: r for r in out["approved_apps"].records}
    app = approved["s:app:A0W7UKG8E"]
    assert app.account_type == "app" and app.third_party and app.status == Status.ACTIVE
    assert app.scopes == ("bot",) and app.privilege == Privilege.WRITE
    assert app.attributes["sensitive_scopes"] == ["bot"] and app.attributes["approval"] == "approved"
    restricted = approved["s:app:A0FDLP8M2L"]
    assert restricted.status == Status.SUSPENDED and restricted.attributes["sensitive_scopes"] == ["files:write:user"]
    grant = approved["s:grant:s:app:A0W7UKG8E->s:workspace:T1"]
    assert grant.scopes == ("bot",) and grant.privilege == Privilege.WRITE

    # Known through its bot and the install log: filed under bots, the log noted as a source.
    from_bot = {r.key: r for r in out["bots"].records}["s:app:A161CLERW"]
    assert from_bot.inventory == "s:T1:bots" and from_bot.name == "beforebot"
    assert from_bot.attributes["derived_from"] == ["s:T1:integration_logs"]
    assert [(o.ref, o.evidence) for o in from_bot.owners] == [("s:user:U2345BCDE", INSTALLER_EVIDENCE)]
    assert from_bot.scopes == ("chat:write:user", "channels:read") and from_bot.privilege == Privilege.WRITE
    assert out["integration_logs"].records == []


def test_app_known_only_from_the_log_and_removed_is_deleted():
    log_only = [{"app_id": "A7", "app_type": "Giphy", "user_id": "U1", "user_name": "a", "date": "100", "change_type": "added", "scope": "commands"},
                {"app_id": "A7", "app_type": "Giphy", "user_id": "U2", "user_name": "b", "date": "200", "change_type": "removed", "scope": ""}]
    installs, _ = transform_integration_logs(log_only)
    recs = transform_apps("s", "T1", installs=installs)["integration_logs"].records
    app = next(r for r in recs if isinstance(r, Account))
    assert (app.name, app.status, app.inventory) == ("Giphy", Status.DELETED, "s:T1:integration_logs")
    assert app.owners[0].ref == "s:user:U1", "the installer, not the remover"


# =============================================================================================
# The emulator, through the real slack_sdk


def test_envelope_errors_as_slack_sends_them(fresh):
    assert slack_error(WebClient(base_url=fresh.url("slack")).auth_test).response.data == {"ok": False, "error": "not_authed"}
    err = slack_error(client(fresh, "xoxb-not-a-real-token").auth_test)
    assert err.response.status_code == 200 and err.response.data == {"ok": False, "error": "invalid_auth"}
    err = slack_error(client(fresh, NARROW).users_list)
    assert err.response.data == {"ok": False, "error": "missing_scope", "needed": "users:read", "provided": "chat:write"}
    assert err.response.headers["X-Accepted-OAuth-Scopes"] == "users:read"
    assert slack_error(client(fresh, BOT).admin_apps_approved_list).response.data == {"ok": False, "error": "not_allowed_token_type"}
    assert slack_error(client(fresh, BOT).team_integrationLogs).response["error"] == "not_allowed_token_type"
    # A plain user token with the scope is still not an org admin.
    assert slack_error(client(fresh, USER).admin_apps_approved_list).response["error"] == "not_an_admin"
    assert slack_error(client(fresh, BOT).api_call, "no.such.method").response["error"] == "unknown_method"


def test_auth_test_tells_the_token_apart(fresh):
    bot = client(fresh, BOT).auth_test().data
    state = fresh.apps["slack"].state
    assert bot["team_id"] == "T0TEST00001" and bot["bot_id"] == state.bots[0].id and bot["user"] == "scanner-bot"
    admin = client(fresh, ADMIN).auth_test().data
    assert "bot_id" not in admin and admin["user_id"] == state.user_by_name("person00").id


def test_cursor_pagination_with_short_pages(fresh):
    first = client(fresh, BOT).users_list(limit=200)
    assert len(first["members"]) == 3, "max_page_size makes pages shorter than asked, as Slack may"
    assert first["response_metadata"]["next_cursor"]
    pages = [page["response_metadata"]["next_cursor"] for page in first]  # the SDK follows the cursors
    assert len(pages) == 5 and pages[-1] == "" and all(pages[:-1])
    names = [m["name"] for page in client(fresh, BOT).users_list(limit=200) for m in page["members"]]
    assert len(names) == len(set(names)) == 10 + 1 + 3 + 1  # people, mangled, bot users, slackbot
    assert names[-1] == "slackbot"
    assert slack_error(client(fresh, BOT).users_list, cursor="bm9wZTp4").response["error"] == "invalid_cursor"


def test_emails_need_users_read_email(fresh):
    state = fresh.apps["slack"].state
    with fresh.apps["slack"].mutate() as st:
        st.tokens.append(copy.deepcopy(st.token(BOT)))
        st.tokens[-1].token, st.tokens[-1].scopes = "xoxb-no-email", ["users:read"]
    members = client(fresh, "xoxb-no-email").users_list()["members"]
    assert not any("email" in m["profile"] for m in members)
    uid = state.user_by_name("person01").id
    assert client(fresh, BOT).users_info(user=uid)["user"]["profile"]["email"] == "person01@test.example"
    assert client(fresh, BOT).users_lookupByEmail(email="person01@test.example")["user"]["id"] == uid
    assert slack_error(client(fresh, BOT).users_lookupByEmail, email="nobody@test.example").response["error"] == "users_not_found"


def test_tier_rate_limit_gives_429_with_retry_after(fresh):
    with fresh.apps["slack"].mutate() as st:
        st.rate_limits.tier2 = 2
    c = client(fresh, BOT)
    c.users_list(limit=1)
    c.users_list(limit=1)
    err = slack_error(c.users_list, limit=1)
    assert err.response.status_code == 429 and err.response.data == {"ok": False, "error": "ratelimited"}
    assert 1 <= int(err.response.headers["Retry-After"]) <= 60
    # Another method (tier 3) has its own window.
    assert c.bots_info(bot=fresh.apps["slack"].state.bots[0].id)["bot"]["app_id"]


def test_rate_limited_fault_is_waited_out_by_the_retry_handler(fresh):
    c = client(fresh, FLAKY, retry=True)
    c.users_list()  # the fault lets the first call through (after: 1)
    started = time.monotonic()
    assert c.users_list()["ok"]
    assert time.monotonic() - started >= 1.0, "Retry-After: 1 was honoured"
    statuses = [(e["method"], e["status"], e["fault"]) for e in fresh.apps["slack"].request_log]
    assert statuses == [("users.list", 200, None), ("users.list", 429, "rate_limited"), ("users.list", 200, None)]


def test_server_error_and_malformed_json_faults(fresh):
    c = client(fresh, BROKEN)
    err = slack_error(c.bots_info, bot="B1")
    assert err.response.status_code == 500 and err.response["error"] == "fatal_error"
    with pytest.raises(json.JSONDecodeError):  # slack_sdk does not catch a truncated body
        c.team_info()


def test_alerts_open_a_dm_and_every_message_is_recorded(fresh):
    emu = fresh.apps["slack"]
    c = client(fresh, BOT)
    uid = c.users_lookupByEmail(email="person02@test.example")["user"]["id"]
    opened = c.conversations_open(users=uid)
    dm = opened["channel"]["id"]
    assert dm.startswith("D") and "no_op" not in opened.data
    again = c.conversations_open(users=uid)
    assert again["channel"]["id"] == dm and again["already_open"] is True
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*deploy key* `legacy-backup`"}}]
    first = c.chat_postMessage(channel=dm, text="1 finding", blocks=blocks)
    reply = c.chat_postMessage(channel=dm, text="details", thread_ts=first["ts"])
    assert first["channel"] == dm and reply["message"]["thread_ts"] == first["ts"]
    assert first["message"]["bot_id"] == emu.state.bots[0].id
    via_user = c.chat_postMessage(channel=uid, text="by user id")
    assert via_user["channel"] == dm, "posting to a user id lands in the app's DM with them"
    msgs = emu.messages
    assert [(m["channel"], m["text"], m["thread_ts"], m["recipient"]) for m in msgs] == [
        (dm, "1 finding", None, uid), (dm, "details", first["ts"], uid), (dm, "by user id", None, uid)]
    assert msgs[0]["blocks"] == blocks and msgs[0]["ts"] == first["ts"]
    assert len({m["ts"] for m in msgs}) == 3
    ims = c.conversations_list(types="im")["channels"]
    assert [(i["id"], i["user"]) for i in ims] == [(dm, uid)]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")  # no_text is the point
def test_post_message_refusals(fresh):
    c = client(fresh, BOT)
    state = fresh.apps["slack"].state
    assert slack_error(c.chat_postMessage, channel="C0NOPE00000", text="x").response["error"] == "channel_not_found"
    assert slack_error(c.chat_postMessage, channel="#general", text="x").response["error"] == "not_in_channel"
    assert slack_error(c.chat_postMessage, channel="#old", text="x").response["error"] == "is_archived"
    assert slack_error(c.chat_postMessage, channel="#alerts").response["error"] == "no_text"
    assert slack_error(c.chat_postMessage, channel="#alerts", blocks=[{"text": "no type"}]).response["error"] == "invalid_blocks"
    assert slack_error(c.conversations_open, users=state.user_by_name("person09").id).response["error"] == "user_disabled"
    assert slack_error(client(fresh, NARROW).conversations_open, users="U1").response["error"] == "missing_scope"
    posted = c.chat_postMessage(channel="#alerts", text="ok")
    assert posted["channel"] == state.channel("alerts").id
    assert c.chat_postMessage(channel=state.channel("secret").id, text="private ok")["ok"]
    assert [m["text"] for m in fresh.apps["slack"].messages] == ["ok", "private ok"]


def test_conversations_list_shows_what_the_token_may_see(fresh):
    c = client(fresh, BOT)
    public = {ch["name"]: ch for ch in c.conversations_list(exclude_archived=True)["channels"]}
    assert set(public) == {"general", "alerts"} and public["alerts"]["is_member"] and not public["general"]["is_member"]
    private = c.conversations_list(types="private_channel")["channels"]
    assert [ch["name"] for ch in private] == ["secret"]
    err = slack_error(client(fresh, ADMIN).conversations_list)
    assert err.response.data["needed"] == "channels:read"


def test_request_log_keeps_only_four_characters_of_a_token(fresh):
    client(fresh, BOT).auth_test()
    entry = fresh.apps["slack"].request_log[-1]
    assert entry["token"] == BOT[-4:] and entry["token_type"] == "bot" and entry["method"] == "auth.test"
    assert BOT not in json.dumps(fresh.apps["slack"].request_log)


@pytest.mark.parametrize("patch, message", [
    (lambda s: s["tokens"].__setitem__(0, {**s["tokens"][0], "token": "xoxp-wrong"}), "a bot token starts with 'xoxb-'"),
    (lambda s: s["tokens"][0].__setitem__("scopes", ["user:read"]), "did you mean 'users:read'"),
    (lambda s: s["bots"][0].__setitem__("app", "ghost"), "slack.bots[0].app: no app 'ghost'"),
    (lambda s: s["users"][0].__setitem__("id", "bad"), "slack.users[0].id: not a Slack user id"),
    (lambda s: s["users"][0].__setitem__("emial", "x"), "did you mean 'email'"),
    (lambda s: s["integration_logs"][0].__setitem__("change_type", "installed"), "expected one of added"),
    (lambda s: s["tokens"][1].__setitem__("user", "scanner-bot"), "must name a person"),
])
def test_estate_errors_name_the_path(patch, message):
    data = estate_data()
    patch(data["slack"])
    with pytest.raises(EstateError) as info:
        load_estate(data, now=NOW)
    assert message in str(info.value)


# =============================================================================================
# Every emitted body against the pinned Slack description


def _as_anyof(node: Any) -> Any:
    """The spec writes ``items: [a, b]`` on non-array schemas where it means ``anyOf``; Draft 4
    ignores ``items`` on non-arrays, so without this a user object would not be checked at all."""
    if isinstance(node, dict):
        out = {k: _as_anyof(v) for k, v in node.items()}
        if isinstance(out.get("items"), list) and out.get("type") != "array":
            out["anyOf"] = out.pop("items")
        return out
    if isinstance(node, list):
        return [_as_anyof(v) for v in node]
    return node


# Errors docs.slack.dev documents for every method (or for these methods) that the 2020 spec's
# per-method enums lack. Bodies using them are checked against the error schema with the code
# (and missing_scope's needed/provided) allowed; everything else about the body still must fit.
GLOBAL_ERRORS = {"not_authed", "invalid_auth", "token_revoked", "account_inactive", "missing_scope",
                 "not_allowed_token_type", "ratelimited", "fatal_error", "invalid_arguments", "unknown_method"}
NEWER_ERRORS = {"chat.postMessage": {"invalid_blocks", "invalid_blocks_format"}, "team.info": {"team_not_found"},
                "conversations.list": {"invalid_types"}, "conversations.open": {"users_list_not_supplied"}}


@pytest.fixture(scope="module")
def slack_spec() -> dict[str, Any]:
    if not SPEC_FILE.exists():
        pytest.skip(f"pinned Slack spec not found at {SPEC_FILE} (it sits beside the checkout in CI)")
    return json.loads(SPEC_FILE.read_text())


def _schemas(spec: dict[str, Any], method: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    op = next(iter(spec["paths"][f"/{method}"].values()))
    defs = _as_anyof(spec["definitions"])

    def full(schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None or schema.get("title", "").startswith(("Default success template", "Default error template")):
            return None  # a placeholder: the spec does not describe this method's body
        return {**_as_anyof(schema), "definitions": defs}

    return full(op["responses"]["200"].get("schema")), full(op["responses"].get("default", {}).get("schema"))


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")  # no_text is the point
def test_every_emitted_body_matches_the_pinned_spec(tmp_path, slack_spec):
    from jsonschema import Draft4Validator

    with Sandbox(estate_data(), now=NOW) as sb:
        bodies: list[tuple[str, int, Any]] = []
        sb.apps["slack"].tap = lambda method, status, body: bodies.append((method, status, body))
        # A full collection with the org admin token, then with a bot token alone (its refusals).
        collect(*source_config(tmp_path, sb, BOT, ADMIN), hmac_key=b"k")
        collect(*source_config(tmp_path, sb, BOT), hmac_key=b"k")
        # Alerts and the error paths of the emulator.
        for check in (test_alerts_open_a_dm_and_every_message_is_recorded, test_post_message_refusals,
                      test_conversations_list_shows_what_the_token_may_see):
            sb.apps["slack"].set_estate(load_estate(estate_data(), now=NOW))
            check(sb)
        c = client(sb, BOT)
        c.conversations_open(users=sb.apps["slack"].state.user_by_name("person01").id, return_im=True)
        c.users_info(user="USLACKBOT")
        c.team_info()
        c.users_list(include_locale=True)
        for fn, kw in ((c.users_info, {"user": "U0NOPE"}), (c.bots_info, {"bot": "B0NOPE"}), (client(sb, NARROW).users_list, {}),
                       (client(sb, "xoxb-unknown").auth_test, {}), (c.users_list, {"cursor": "eA=="})):
            with pytest.raises(SlackApiError):
                fn(**kw)
        with sb.apps["slack"].mutate() as st:
            st.rate_limits.tier3 = 1
        with pytest.raises(SlackApiError) as limited:
            for _ in range(2):
                c.team_info()
        assert limited.value.response.status_code == 429
        sb.apps["slack"].tap = None

    methods = {m for m, _, _ in bodies}
    assert methods >= {"auth.test", "users.list", "users.info", "users.lookupByEmail", "bots.info", "team.info",
                       "team.integrationLogs", "admin.apps.approved.list", "admin.apps.restricted.list",
                       "conversations.open", "conversations.list", "chat.postMessage"}
    checked, caught_planted, placeholders, problems = 0, 0, set(), []
    for method, status, body in bodies:
        ok_schema, err_schema = _schemas(slack_spec, method) if f"/{method}" in slack_spec["paths"] else (None, None)
        schema = ok_schema if body.get("ok") else err_schema
        if schema is None:
            placeholders.add(method)
            continue
        if not body.get("ok"):
            allowed = GLOBAL_ERRORS | NEWER_ERRORS.get(method, set())
            enum = schema["properties"]["error"].get("enum", [])
            if body["error"] in allowed and body["error"] not in enum:
                schema = copy.deepcopy(schema)
                schema["properties"]["error"]["enum"] = enum + [body["error"]]
                schema["properties"].setdefault("needed", {"type": "string"})
                schema["properties"].setdefault("provided", {"type": "string"})
        for e in Draft4Validator(schema).iter_errors(body):
            if isinstance(e.instance, dict) and e.instance.get("name") == "mangled":
                caught_planted += 1  # the estate's deliberately malformed member (``override``)
                continue
            problems.append(f"{method} ({status}): {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}")
        checked += 1
    assert not problems, "\n".join(problems[:20])
    assert checked >= 40
    assert caught_planted >= 1, "the check is not vacuous: it flags the member whose id is a number"
    # admin.apps.*.list carry only a placeholder schema in the pinned spec (shapes follow its examples).
    assert placeholders <= {"admin.apps.approved.list", "admin.apps.restricted.list", "unknown.method"}


# =============================================================================================
# The collector over real HTTP


def test_collect_everything_with_an_org_admin_token(fresh, tmp_path):
    result = collect(*source_config(tmp_path, fresh, BOT, ADMIN), hmac_key=b"k")
    cov = by_inventory(result)
    assert all(c.ok for c in cov.values()), result.coverage
    assert {c.inventory for c in result.coverage} == {f"slk:T0TEST00001:{s}" for s in ("users", "bots", "approved_apps", "integration_logs")}
    records = {r.key: r for r in result.records}
    for rec in result.records:
        assert rec.inventory in {c.inventory for c in result.coverage}
    state = fresh.apps["slack"].state
    apps = {a.name: records[f"slk:app:{a.id}"] for a in state.apps}
    vendor = apps["vendor-sync"]
    assert vendor.third_party and vendor.privilege == Privilege.ADMIN and vendor.inventory.endswith(":approved_apps")
    assert set(vendor.scopes) == {"chat:write", "files:read", "admin.users:write"}
    assert vendor.owners[0].ref == f"slk:user:{state.user_by_name('person02').id}"
    assert set(vendor.attributes["derived_from"]) == {"slk:T0TEST00001:bots", "slk:T0TEST00001:integration_logs"}
    assert apps["banned"].status == Status.SUSPENDED
    assert apps["gone"].status == Status.DELETED and apps["gone"].inventory.endswith(":bots")
    assert apps["scanner"].privilege == Privilege.WRITE and not apps["scanner"].third_party
    people = [r for r in result.records if isinstance(r, Account) and r.is_human]
    assert len(people) == 10 and all(p.email and p.email.endswith("@test.example") for p in people)
    assert sum(1 for p in people if p.status == Status.DELETED) == 1
    assert {r.name for r in result.records if isinstance(r, Account) and r.account_type == "bot"} == {"scanner-bot", "vendor-bot", "gone-bot"}


def test_collector_follows_every_page(fresh, tmp_path):
    result = collect(*source_config(tmp_path, fresh, BOT, ADMIN), hmac_key=b"k")
    calls = [e for e in fresh.apps["slack"].request_log if e["method"] == "users.list"]
    assert len(calls) == 5, "15 members in pages of 3"
    assert by_inventory(result)["users"].count == 1 + 2 * (10 + 3)  # workspace, accounts and their grants
    logs = [e for e in fresh.apps["slack"].request_log if e["method"] == "team.integrationLogs"]
    assert len(logs) == 2, "4 log entries in pages of 3"
    assert by_inventory(result)["integration_logs"].ok


def test_bot_token_reads_users_and_reports_the_admin_gap(fresh, tmp_path):
    result = collect(*source_config(tmp_path, fresh, BOT), hmac_key=b"k")
    cov = by_inventory(result)
    assert cov["users"].ok and cov["bots"].ok and cov["users"].count > 20
    assert not cov["approved_apps"].ok and cov["approved_apps"].reason.startswith(APPROVED_APPS_NEED_ORG_ADMIN)
    assert "not_allowed_token_type" in cov["approved_apps"].reason
    assert not cov["integration_logs"].ok and "not_allowed_token_type" in cov["integration_logs"].reason
    # Without the approval list, apps still come from their bots (no scopes known: read).
    apps = [r for r in result.records if isinstance(r, Account) and r.account_type == "app"]
    assert {a.name for a in apps} == {"scanner-bot", "vendor-bot", "gone-bot"} and all(a.inventory.endswith(":bots") for a in apps)


def test_missing_scope_is_a_gap_naming_the_scope(fresh, tmp_path):
    result = collect(*source_config(tmp_path, fresh, NARROW), hmac_key=b"k")
    cov = by_inventory(result)
    assert not cov["users"].ok and "missing_scope" in cov["users"].reason and "users:read" in cov["users"].reason
    assert not cov["bots"].ok and "member list could not be read" in cov["bots"].reason
    assert not any(isinstance(r, Account) for r in result.records), "a failed inventory is a gap, not an empty list"


def test_malformed_member_is_skipped_with_a_log_line(fresh, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="nhiscan.collectors.slack")
    result = collect(*source_config(tmp_path, fresh, BOT, ADMIN), hmac_key=b"k")
    assert by_inventory(result)["users"].ok
    warning = next(w for w in result.warnings if "skipped malformed item" in w)
    assert warning.startswith("slack slk:T0TEST00001:users:") and "id is a int" in warning
    assert "skipped malformed item" in caplog.text and "slk:T0TEST00001:users" in caplog.text
    assert sum(1 for r in result.records if isinstance(r, Account) and r.is_human) == 10


def test_429_is_honoured_by_the_collector(fresh, tmp_path):
    result = collect(*source_config(tmp_path, fresh, FLAKY, ADMIN), hmac_key=b"k")
    assert by_inventory(result)["users"].ok
    statuses = [e["status"] for e in fresh.apps["slack"].request_log if e["method"] == "users.list"]
    assert statuses.count(429) == 1 and statuses.count(200) == 5


def test_429_beyond_the_retry_budget_is_a_gap(fresh, tmp_path):
    result = collect(*source_config(tmp_path, fresh, THROTTLED, ADMIN), hmac_key=b"k")
    cov = by_inventory(result)
    assert not cov["users"].ok and "HTTP 429" in cov["users"].reason
    assert cov["approved_apps"].ok, "the admin token's listings are unaffected"
    assert len([e for e in fresh.apps["slack"].request_log if e["method"] == "users.list"]) == 3  # 1 + max_retries


def test_server_errors_and_bad_credentials_are_gaps(fresh, tmp_path):
    result = collect(*source_config(tmp_path, fresh, BROKEN, ADMIN), hmac_key=b"k")
    cov = by_inventory(result)
    assert not cov["bots"].ok and "HTTP 500" in cov["bots"].reason
    assert cov["users"].ok, "team.info's malformed body only costs the workspace its display name"
    workspace = next(r for r in result.records if isinstance(r, Resource))
    assert workspace.name == "Test Co"  # auth.test's name
    with fresh.apps["slack"].mutate() as st:
        st.token(BROKEN).faults.append(SlackFault(fault="malformed_json", method="users.list"))
    cov = by_inventory(collect(*source_config(tmp_path, fresh, BROKEN, ADMIN), hmac_key=b"k"))
    assert not cov["users"].ok and cov["users"].reason == "malformed response: the body is not valid JSON"
    result = collect(*source_config(tmp_path, fresh, "xoxb-revoked-or-wrong"), hmac_key=b"k")
    assert [c.ok for c in result.coverage] == [False] * 4
    assert all("auth.test failed: credentials rejected (invalid_auth)" in c.reason for c in result.coverage)


def test_no_token_value_in_records_reasons_or_logs(fresh, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    outputs = []
    for token, admin in ((BOT, ADMIN), (BROKEN, None), (NARROW, None), (THROTTLED, ADMIN)):
        result = collect(*source_config(tmp_path, fresh, token, admin), hmac_key=b"k")
        outputs.append(json.dumps([r.to_dict() for r in result.records]))
        outputs.append(json.dumps([c.reason for c in result.coverage] + result.warnings))
    outputs.append(caplog.text)
    outputs.append(json.dumps(fresh.apps["slack"].request_log))
    text = "\n".join(outputs)
    assert "slack_sdk" in caplog.text, "the client's own debug lines were captured too"
    for token in ALL_TOKENS:
        assert token not in text and token[5:] not in text


# =============================================================================================
# The demo estate, end to end (GitHub and Slack through the whole sweep)


@pytest.fixture(scope="module")
def demo_sandbox():
    private, public = generate_app_key_pair()
    with Sandbox(bundled_estate(), now=NOW, app_keys={DEMO_APP_ID: public.decode()}) as sb:
        yield sb, private


@pytest.fixture
def demo(demo_sandbox, tmp_path):
    """The demo estate (reloaded) and a fresh installation configured for GitHub and Slack."""
    from scanner.config import load_config

    sb, private = demo_sandbox
    sb.apps["slack"].set_estate(load_estate(bundled_estate(), now=NOW))
    path = prepare(sb, tmp_path, private, vendors={"slack"})
    return sb, load_config(path)


def test_demo_sweep_catches_the_slack_situations(demo):
    from scanner.sweep import run_sweep

    sb, config = demo
    assert [s.name for s in config.sources.slack] == ["slack"] and config.sources.slack[0].admin_token_file
    outcome = run_sweep(config, now=NOW)
    slack_cov = [c for c in outcome.coverage if c.source == "slack"]
    assert len(slack_cov) == 4 and all(c.ok for c in slack_cov), slack_cov
    found = {(f["rule_id"], f["subject"]["key"]): f for f in outcome.findings if f["subject"]["source"] == "slack"}
    state = sb.apps["slack"].state
    app = {a.name: f"slack:app:{a.id}" for a in state.apps}
    bot = {b.name: f"slack:user:{b.user_id}" for b in state.bots}

    # CATCH: Globex's app outlived contract C-100; bob installed it.
    f = found[("contract-ended", app["globex-notifier"])]
    assert f["severity"] == "critical" and f["contracts"][0]["id"] == "C-100"
    assert f["owners"][0]["email"] == "bob@acme.example"
    assert f["owners"][0]["evidence"][0].startswith(INSTALLER_EVIDENCE)
    assert ("contract-ended", bot["globex-notifier"]) in found
    # CATCH: an internal app with admin scopes.
    f = found[("excessive-privilege", app["acme-provisioner"])]
    assert "admin.users:write" in f["why"] and f["owners"][0]["email"] == "frank@acme.example"
    # CATCH: eve installed standup-helper and has left.
    f = found[("owner-departed", app["standup-helper"])]
    assert f["owners"][0]["email"] == "eve@acme.example" and "slack:T0ACME00001:integration_logs" in f["inventories"]
    # QUIET: the healthy app, the scanner's own, the removed and the restricted ones, and their bots.
    quiet = {app[n] for n in ("deploy-notifier", "nhiscan", "giphy-classic", "file-share-pro")} | {bot["deploy-notifier"], bot["nhiscan-bot"], bot["giphy"]}
    assert not [k for k in found if k[1] in quiet]
    assert not [k for k in found if k[0] == "owner-missing"], "every Slack app and bot resolves to its installer"


def test_demo_failed_install_log_keeps_the_owner_finding_open(demo):
    from scanner.sweep import run_sweep

    sb, config = demo
    run_sweep(config, now=NOW, write_reports=False)
    with sb.apps["slack"].mutate() as st:
        st.token(next(t.token for t in st.tokens if t.type == "org_admin")).faults.append(
            SlackFault(fault="server_error", method="team.integrationLogs"))
    outcome = run_sweep(config, now=NOW, write_reports=False)
    gap = next(c for c in outcome.coverage if c.inventory == "slack:T0ACME00001:integration_logs")
    assert not gap.ok and "HTTP 500" in gap.reason
    app = next(f"slack:app:{a.id}" for a in sb.apps["slack"].state.apps if a.name == "standup-helper")
    f = next(f for f in outcome.findings if f["rule_id"] == "owner-departed" and f["subject"]["key"] == app)
    assert f["change"] != "resolved", "we could not see the installer, so nothing is resolved"

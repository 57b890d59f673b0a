"""Pure GitLab transforms on recorded-shape payloads (the example bodies in GitLab's API docs).

No HTTP here: each test feeds the JSON GitLab documents for an endpoint to one ``transform_*``
and checks the records, the privilege normalisation and how malformed items are skipped.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from gitlab.exceptions import GitlabAuthenticationError, GitlabHttpError, GitlabParsingError

from scanner.collectors import gitlab as glc
from scanner.records import Account, Credential, Grant, Privilege, Resource, Status, keyed_hash

SRC = "gitlab"
KEY = b"unit-test-hmac-key-0123456789abc"


def by_key(records):
    return {r.key: r for r in records}


# --- privilege normalisation ------------------------------------------------------------------


@pytest.mark.parametrize("level,expected", [
    (10, Privilege.READ), (15, Privilege.READ), (20, Privilege.READ),
    (30, Privilege.WRITE), (40, Privilege.ADMIN), (50, Privilege.OWNER),
])
def test_access_levels_map_onto_privileges(level, expected):
    assert glc.access_level_privilege(level) == expected


@pytest.mark.parametrize("level,scopes,expected", [
    (40, ["api"], Privilege.ADMIN),                        # Maintainer with the full API
    (40, ["read_repository"], Privilege.READ),             # the scope caps the role
    (30, ["api"], Privilege.WRITE),
    (50, ["api", "read_api"], Privilege.OWNER),
    (40, ["write_repository"], Privilege.WRITE),
    (20, ["api"], Privilege.READ),                         # the role caps the scope
])
def test_resource_token_privilege_is_the_role_capped_by_the_scopes(level, scopes, expected):
    assert glc.resource_token_privilege(level, scopes) == expected


@pytest.mark.parametrize("scopes,admin,expected", [
    (["read_api"], False, Privilege.READ),
    (["read_repository", "read_registry"], False, Privilege.READ),
    (["write_repository"], False, Privilege.WRITE),
    (["create_runner"], False, Privilege.WRITE),
    (["api"], False, Privilege.WRITE),
    (["api"], True, Privilege.ADMIN),                      # an administrator's api token is the instance
    (["read_api", "sudo"], False, Privilege.ADMIN),
    (["admin_mode"], False, Privilege.ADMIN),
])
def test_personal_token_privilege_reads_scopes_against_the_holder(scopes, admin, expected):
    assert glc.personal_token_privilege(scopes, holder_is_admin=admin) == expected


# --- users, service accounts ------------------------------------------------------------------------

ADMIN_USERS = [
    {"id": 1, "username": "john_smith", "name": "John Smith", "state": "active", "locked": False,
     "avatar_url": "http://localhost:3000/uploads/user/avatar/1/index.jpg", "web_url": "http://localhost:3000/john_smith",
     "created_at": "2012-05-23T08:00:58Z", "bio": "", "location": None, "public_email": "john@example.com",
     "bot": False, "last_sign_in_at": "2012-06-01T11:41:01Z", "confirmed_at": "2012-05-23T09:05:22Z",
     "last_activity_on": "2012-05-23", "email": "john@example.com", "theme_id": 1, "color_scheme_id": 2,
     "projects_limit": 100, "current_sign_in_at": "2012-06-02T06:36:55Z", "identities": [],
     "can_create_group": True, "can_create_project": True, "two_factor_enabled": True, "external": False,
     "private_profile": False, "is_admin": True, "note": None, "namespace_id": 1, "created_by": None},
    {"id": 57, "username": "project_42_bot_3c0b8c3a", "name": "release-bot", "state": "active", "locked": False,
     "web_url": "http://localhost:3000/project_42_bot_3c0b8c3a", "created_at": "2024-01-01T00:00:00Z", "bot": True,
     "last_activity_on": "2024-03-01", "email": "project_42_bot_3c0b8c3a@noreply.localhost", "two_factor_enabled": False,
     "external": False, "is_admin": False, "created_by": {"id": 1, "username": "john_smith", "name": "John Smith",
                                                          "state": "active", "locked": False, "web_url": "x"}},
    {"id": 114, "username": "service_account_33", "name": "Service account user", "state": "blocked", "bot": True,
     "email": "backups@example.com", "created_at": "2024-02-01T00:00:00Z", "is_admin": False, "created_by": None},
]


def test_users_become_humans_bots_and_service_accounts():
    batch = glc.transform_users(SRC, ADMIN_USERS, inventory="gitlab:instance:users")
    assert not batch.skipped
    recs = by_key(batch.records)
    john = recs["gitlab:user:1"]
    assert isinstance(john, Account) and john.is_human and john.account_type == "user"
    assert john.email == "john@example.com" and john.login == "john_smith"
    assert john.role == "admin" and john.privilege == Privilege.ADMIN and john.mfa_enabled is True
    assert john.last_active_at == datetime(2012, 5, 23, tzinfo=timezone.utc)
    bot = recs["gitlab:user:57"]
    assert not bot.is_human and bot.account_type == "bot" and bot.attributes["bot_kind"] == "project_bot"
    assert bot.email is None, "a GitLab-generated noreply address names nobody"
    assert bot.owners[0].ref == "gitlab:user:1" and "created_by" in bot.owners[0].evidence
    sa = recs["gitlab:user:114"]
    assert sa.account_type == "service_account" and sa.status == Status.SUSPENDED
    assert sa.email == "backups@example.com", "a real mailbox on a machine account names its owner"
    assert all(r.inventory == "gitlab:instance:users" for r in batch.records)


def test_service_account_ids_mark_bots_that_do_not_look_like_service_accounts():
    item = {**ADMIN_USERS[1], "id": 99, "username": "backup-runner"}
    (acc,) = glc.transform_users(SRC, [item], inventory="i", service_account_ids={99}).records
    assert acc.account_type == "service_account"


def test_group_service_accounts():
    items = [{"id": 57, "username": "service_account_group_345_6018816a18e515214e0c34c2b33523fc",
              "name": "Service account user", "email": "service_account_group_345_6018@noreply.gitlab.example.com"}]
    (acc,) = glc.transform_service_accounts(SRC, items, inventory="gitlab:acme:service_accounts", group="acme").records
    assert acc.account_type == "service_account" and not acc.is_human and acc.email is None
    assert acc.attributes["group"] == "acme"


# --- tokens -----------------------------------------------------------------------------------------

PATS = [
    {"id": 4, "name": "Test Token", "revoked": False, "created_at": "2020-07-23T14:31:47.729Z",
     "description": "Test Token description", "scopes": ["api"], "user_id": 1,
     "last_used_at": "2021-10-06T17:58:37.550Z", "active": True, "expires_at": None},
    {"id": 5, "name": "old", "revoked": True, "created_at": "2020-07-23T14:31:47.729Z", "scopes": ["read_api"],
     "user_id": 1, "last_used_at": None, "active": False, "expires_at": "2021-01-31"},
    {"id": 6, "name": "expired", "revoked": False, "created_at": "2020-07-23T14:31:47.729Z", "scopes": ["read_api"],
     "user_id": 1, "last_used_at": None, "active": False, "expires_at": "2021-01-31"},
    {"id": 7, "name": "bot token", "revoked": False, "created_at": "2024-01-01T00:00:00.000Z", "scopes": ["api"],
     "user_id": 57, "last_used_at": None, "active": True, "expires_at": "2025-01-01"},
    {"id": 8, "name": "blocked holder", "revoked": False, "created_at": "2024-01-01T00:00:00.000Z", "scopes": ["read_api"],
     "user_id": 114, "last_used_at": None, "active": True, "expires_at": None},
]


def test_personal_access_tokens():
    users = {u["id"]: u for u in ADMIN_USERS}
    batch = glc.transform_access_tokens(SRC, PATS, inventory="gitlab:instance:personal_access_tokens", users=users)
    recs = by_key(batch.records)
    t = recs["gitlab:access_token:4"]
    assert isinstance(t, Credential) and t.credential_type == "access_token"
    assert t.account_key == "gitlab:user:1" and t.scopes == ("api",)
    assert t.privilege == Privilege.ADMIN, "john is an administrator: his api token administers the instance"
    assert t.expires_at is None and t.last_used_at == datetime(2021, 10, 6, 17, 58, 37, 550000, tzinfo=timezone.utc)
    assert t.owners[0].ref == "gitlab:user:1" and t.owners[0].evidence == "personal token user_id (GitLab API)"
    assert t.status == Status.ACTIVE and t.attributes["token_kind"] == "personal"
    assert recs["gitlab:access_token:5"].status == Status.REVOKED
    expired = recs["gitlab:access_token:6"]
    assert expired.status == Status.EXPIRED and expired.expires_at == datetime(2021, 1, 31, tzinfo=timezone.utc)
    bot_token = recs["gitlab:access_token:7"]
    assert bot_token.owners == () and bot_token.attributes["token_kind"] == "project_bot", \
        "a bot's token is attributed through its bot, not as a person's"
    assert recs["gitlab:access_token:8"].status == Status.SUSPENDED, "GitLab refuses a blocked user's tokens"


def test_impersonation_tokens_authenticate_as_the_user_without_claiming_ownership():
    items = [{"active": True, "user_id": 2, "scopes": ["api"], "revoked": False, "name": "mytoken",
              "description": "Test Token description", "id": 2, "created_at": "2017-03-17T17:18:09.283Z",
              "impersonation": True, "expires_at": "2017-04-04", "last_used_at": None}]
    (t,) = glc.transform_access_tokens(SRC, items, inventory="i", kind="impersonation").records
    assert t.account_key == "gitlab:user:2" and t.owners == ()
    assert t.attributes["impersonation"] is True and t.attributes["token_kind"] == "impersonation"


PROJECT_TOKENS = [
    {"user_id": 141, "scopes": ["api"], "name": "token", "description": "Test Token description",
     "expires_at": "2021-01-31", "id": 42, "active": True, "created_at": "2021-01-20T22:11:48.151Z",
     "last_used_at": None, "revoked": False, "access_level": 40, "resource_type": "project", "resource_id": 1234},
    {"user_id": 142, "scopes": ["read_repository"], "name": "reader", "expires_at": None, "id": 43, "active": True,
     "created_at": "2021-01-20T22:11:48.151Z", "last_used_at": "2021-02-01T00:00:00.000Z", "revoked": False,
     "access_level": 20},
]


def test_project_access_tokens_carry_their_role_and_their_bot():
    batch = glc.transform_resource_access_tokens(SRC, PROJECT_TOKENS, inventory="gitlab:acme/api:access_tokens",
                                                 resource_type="project", resource_path="acme/api")
    recs = by_key(batch.records)
    t = recs["gitlab:access_token:42"]
    assert t.privilege == Privilege.ADMIN and t.attributes["role"] == "maintainer" and t.attributes["access_level"] == 40
    assert t.attributes["token_kind"] == "project_access_token" and t.account_key == "gitlab:user:141"
    grant = recs["gitlab:grant:gitlab:access_token:42->gitlab:project:acme/api"]
    assert isinstance(grant, Grant) and grant.privilege == Privilege.ADMIN and grant.scopes == ("api",)
    bot = recs["gitlab:user:141"]
    assert isinstance(bot, Account) and bot.account_type == "bot" and not bot.is_human and bot.name == "token"
    assert recs["gitlab:grant:gitlab:user:141->gitlab:project:acme/api"].privilege == Privilege.ADMIN
    assert batch.weak == {"gitlab:user:141", "gitlab:user:142"}, "the stand-in bots must not replace GET /users' copies"
    assert recs["gitlab:access_token:43"].privilege == Privilege.READ


def test_group_access_token_is_granted_on_the_group():
    item = {**PROJECT_TOKENS[0], "resource_type": "group"}
    recs = by_key(glc.transform_resource_access_tokens(SRC, [item], inventory="i", resource_type="group",
                                                       resource_path="acme/platform").records)
    assert "gitlab:grant:gitlab:access_token:42->gitlab:group:acme/platform" in recs
    assert recs["gitlab:access_token:42"].attributes["token_kind"] == "group_access_token"


# --- deploy tokens and keys ----------------------------------------------------------------------

DEPLOY_TOKENS = [
    {"id": 1, "name": "MyToken", "username": "gitlab+deploy-token-1", "expires_at": "2020-02-14T00:00:00.000Z",
     "revoked": False, "expired": True, "scopes": ["read_repository", "read_registry"]},
    {"id": 2, "name": "pusher", "username": "gitlab+deploy-token-2", "expires_at": None,
     "revoked": False, "expired": False, "scopes": ["read_registry", "write_registry"]},
]


def test_deploy_tokens_have_no_usage_tracking():
    batch = glc.transform_deploy_tokens(SRC, DEPLOY_TOKENS, inventory="gitlab:acme/web:deploy_tokens",
                                        resource_key="gitlab:project:acme/web", where="acme/web")
    recs = by_key(batch.records)
    one, two = recs["gitlab:deploy_token:1"], recs["gitlab:deploy_token:2"]
    assert one.credential_type == "deploy_token" and one.usage_tracked is False and one.status == Status.EXPIRED
    assert one.privilege == Privilege.READ and two.privilege == Privilege.WRITE and two.status == Status.ACTIVE
    assert recs["gitlab:grant:gitlab:deploy_token:2->gitlab:project:acme/web"].privilege == Privilege.WRITE


def test_instance_deploy_token_list_has_no_placement():
    batch = glc.transform_deploy_tokens(SRC, DEPLOY_TOKENS, inventory="gitlab:instance:deploy_tokens")
    assert not [r for r in batch.records if isinstance(r, Grant)]


INSTANCE_KEYS = [
    {"id": 1, "title": "Public key", "key": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDNJAkI3Wdf0r13c8a5pEExB2YowPWCSVzfZV22p",
     "fingerprint": "4a:9d:64:15:ed:3a:e6:07:6e:89:36:b3:3b:03:05:d9",
     "fingerprint_sha256": "SHA256:Jrs3LD1Ji30xNLtTVf9NDCj7kkBgPBb2pjvTZ3HfIgU", "created_at": "2013-10-02T10:12:29Z",
     "expires_at": None,
     "projects_with_write_access": [
         {"id": 73, "description": None, "name": "project2", "name_with_namespace": "Sidney Jones / project2",
          "path": "project2", "path_with_namespace": "sidney_jones/project2", "created_at": "2021-10-25T18:33:17.550Z"}],
     "projects_with_readonly_access": [
         {"id": 74, "description": None, "name": "project3", "name_with_namespace": "Sidney Jones / project3",
          "path": "project3", "path_with_namespace": "sidney_jones/project3", "created_at": "2021-10-25T18:33:17.666Z"}]},
]


def test_instance_deploy_keys_grant_each_project_at_its_level_and_name_their_creator():
    creators = {"SHA256:Jrs3LD1Ji30xNLtTVf9NDCj7kkBgPBb2pjvTZ3HfIgU": {"id": 9, "username": "sidney"}}
    batch = glc.transform_deploy_keys(SRC, INSTANCE_KEYS, inventory="gitlab:instance:deploy_keys", creators=creators)
    recs = by_key(batch.records)
    key = recs["gitlab:deploy_key:1"]
    assert key.credential_type == "deploy_key" and key.privilege == Privilege.WRITE and key.usage_tracked is False
    assert key.owners[0].ref == "gitlab:user:9" and key.created_by == "gitlab:user:9"
    assert recs["gitlab:grant:gitlab:deploy_key:1->gitlab:project:sidney_jones/project2"].privilege == Privilege.WRITE
    assert recs["gitlab:grant:gitlab:deploy_key:1->gitlab:project:sidney_jones/project3"].privilege == Privilege.READ


def test_project_deploy_key_can_push_is_write():
    items = [{**{k: v for k, v in INSTANCE_KEYS[0].items() if not k.startswith("projects_")}, "can_push": False},
             {**{k: v for k, v in INSTANCE_KEYS[0].items() if not k.startswith("projects_")}, "id": 3, "can_push": True}]
    recs = by_key(glc.transform_deploy_keys(SRC, items, inventory="i", project="acme/api").records)
    assert recs["gitlab:deploy_key:1"].privilege == Privilege.READ and recs["gitlab:deploy_key:1"].owners == ()
    assert recs["gitlab:deploy_key:3"].privilege == Privilege.WRITE
    assert recs["gitlab:grant:gitlab:deploy_key:3->gitlab:project:acme/api"].scopes == ("can_push",)


# --- CI/CD variables --------------------------------------------------------------------------------

PLANTED = "glpat-UNITplantedValue000000"
PROJECT_VARIABLES = [
    {"variable_type": "env_var", "key": "TEST_VARIABLE_1", "value": PLANTED, "hidden": False, "protected": False,
     "masked": True, "raw": False, "environment_scope": "*", "description": None},
    {"variable_type": "file", "key": "TEST_VARIABLE_1", "value": "other", "hidden": False, "protected": True,
     "masked": False, "raw": True, "environment_scope": "production", "description": "prod only"},
    {"variable_type": "env_var", "key": "HIDDEN", "value": None, "hidden": True, "protected": False, "masked": True,
     "raw": False, "environment_scope": "*", "description": None},
]


def test_variables_keep_only_a_keyed_hash_of_the_value():
    batch = glc.transform_variables(SRC, PROJECT_VARIABLES, inventory="gitlab:acme/api:variables", hmac_key=KEY,
                                    level="project", where="acme/api", resource_key="gitlab:project:acme/api")
    recs = by_key(batch.records)
    v = recs["gitlab:ci_variable:acme/api/TEST_VARIABLE_1@*"]
    assert v.credential_type == "ci_variable" and v.value_hmac == keyed_hash(KEY, PLANTED) and v.preview is None
    assert v.attributes == {"level": "project", "scope": "acme/api", "environment_scope": "*", "variable_type": "env_var",
                            "masked": True, "protected": False, "hidden": False, "raw": False, "value_length": len(PLANTED)}
    prod = recs["gitlab:ci_variable:acme/api/TEST_VARIABLE_1@production"]
    assert prod.attributes["protected"] is True and prod.attributes["variable_type"] == "file"
    hidden = recs["gitlab:ci_variable:acme/api/HIDDEN@*"]
    assert hidden.value_hmac is None and hidden.attributes["hidden"] is True
    assert PLANTED not in json.dumps([r.to_dict() for r in batch.records])


def test_instance_variables_have_no_environment_scope():
    items = [{"key": "TEST_VARIABLE_1", "variable_type": "env_var", "value": "TEST_1", "protected": False,
              "masked": False, "raw": False, "description": None}]
    (v, g) = glc.transform_variables(SRC, items, inventory="i", hmac_key=KEY, level="instance", where="instance",
                                     resource_key="gitlab:instance:gitlab.example.com").records
    assert v.key == "gitlab:ci_variable:instance/TEST_VARIABLE_1@*" and g.resource_key == "gitlab:instance:gitlab.example.com"


def test_a_malformed_value_is_skipped_without_quoting_it():
    items = [{"key": "NUM", "value": 12345678}, PROJECT_VARIABLES[0]]
    batch = glc.transform_variables(SRC, items, inventory="i", hmac_key=KEY, level="project", where="p", resource_key=None)
    # (the planted token in the unprotected variable is also an exposure record: not counted here)
    assert len([r for r in batch.records if r.kind != "exposure"]) == 1 and len(batch.skipped) == 1
    assert "value is a int" in batch.skipped[0] and "12345678" not in batch.skipped[0]


# --- runners, groups, projects -----------------------------------------------------------------------

RUNNERS = [
    {"active": True, "paused": False, "description": "test-1-20150125", "id": 6, "ip_address": None, "is_shared": False,
     "runner_type": "project_type", "name": None, "online": True, "status": "online", "created_at": "2025-05-03T00:00:00.000Z"},
    {"active": False, "paused": True, "description": "shared", "id": 8, "is_shared": True, "runner_type": "instance_type",
     "name": "shared-runner", "online": False, "status": "offline"},
]
RUNNER_DETAILS = {
    6: {**RUNNERS[0], "tag_list": ["ruby", "mysql"], "run_untagged": True, "locked": False, "maximum_timeout": None,
        "access_level": "ref_protected", "version": "17.5.0", "contacted_at": "2026-10-30T12:00:00.000Z",
        "projects": [{"id": 1, "name": "api", "path_with_namespace": "acme/api"},
                     {"id": 2, "name": "web", "path_with_namespace": "acme/web"}],
        "groups": []},
}


def test_runners_with_details_get_last_contact_and_placement():
    batch = glc.transform_runners(SRC, RUNNERS, inventory="gitlab:instance:runners", details=RUNNER_DETAILS,
                                  instance="gitlab:instance:gitlab.example.com")
    recs = by_key(batch.records)
    r = recs["gitlab:runner:6"]
    assert r.account_type == "runner" and r.status == Status.ACTIVE
    assert r.last_active_at == datetime(2026, 10, 30, 12, tzinfo=timezone.utc)
    assert r.attributes["tag_list"] == ["ruby", "mysql"] and r.attributes["access_level"] == "ref_protected"
    assert {"gitlab:grant:gitlab:runner:6->gitlab:project:acme/api", "gitlab:grant:gitlab:runner:6->gitlab:project:acme/web"} <= set(recs)
    shared = recs["gitlab:runner:8"]
    assert shared.status == Status.SUSPENDED and shared.last_active_at is None
    assert "gitlab:grant:gitlab:runner:8->gitlab:instance:gitlab.example.com" in recs


GROUPS = [
    {"id": 2, "web_url": "https://gitlab.example.com/groups/acme", "name": "Acme", "path": "acme", "description": "",
     "visibility": "private", "full_name": "Acme", "full_path": "acme", "created_at": "2020-01-15T12:36:29.590Z", "parent_id": None},
    {"id": 3, "web_url": "https://gitlab.example.com/groups/acme/platform", "name": "Platform", "path": "platform",
     "visibility": "internal", "full_name": "Acme / Platform", "full_path": "acme/platform", "parent_id": 2},
]


def test_groups_hang_under_their_parent_and_the_instance():
    batch = glc.transform_groups(SRC, GROUPS, inventory="gitlab:instance:groups", instance="gitlab:instance:gitlab.example.com",
                                 host="gitlab.example.com")
    recs = by_key(batch.records)
    assert recs["gitlab:instance:gitlab.example.com"].resource_type == "instance"
    assert recs["gitlab:group:acme"].parent_key == "gitlab:instance:gitlab.example.com"
    assert recs["gitlab:group:acme/platform"].parent_key == "gitlab:group:acme"
    assert recs["gitlab:group:acme/platform"].visibility == "internal"


def test_projects_hang_under_their_namespace():
    items = [{"id": 4, "name": "api", "path": "api", "path_with_namespace": "acme/platform/api", "visibility": "private",
              "web_url": "https://gitlab.example.com/acme/platform/api",
              "namespace": {"id": 3, "name": "Platform", "path": "platform", "kind": "group", "full_path": "acme/platform"}},
             {"id": 5, "name": "dots", "path_with_namespace": "alice/dots", "namespace": {"kind": "user", "full_path": "alice"}}]
    recs = by_key(glc.transform_projects(SRC, items, inventory="gitlab:acme:projects").records)
    assert isinstance(recs["gitlab:project:acme/platform/api"], Resource)
    assert recs["gitlab:project:acme/platform/api"].parent_key == "gitlab:group:acme/platform"
    assert recs["gitlab:project:alice/dots"].parent_key is None


# --- malformed items and error reasons ------------------------------------------------------------------


def test_malformed_items_are_skipped_and_the_rest_kept():
    items = [
        "not an object",
        {"id": "x1", "name": "bad id", "user_id": 1, "scopes": []},
        {"id": 10, "name": "bad scopes", "user_id": 1, "scopes": "api"},
        {"id": 11, "name": "bad time", "user_id": 1, "scopes": [], "created_at": "yesterday"},
        PATS[0],
    ]
    batch = glc.transform_access_tokens(SRC, items, inventory="i")
    assert [r.key for r in batch.records] == ["gitlab:access_token:4"]
    assert batch.skipped == [
        "personal token #0: is a JSON str, not an object",
        "personal token #1 (id='x1'): id is a str, not an integer",
        "personal token #2 (id=10): scopes is a str, not a list",
        "personal token #3 (id=11): created_at is not an ISO 8601 timestamp",
    ]


def _http_error(status, message, body=b""):
    return GitlabHttpError(response_code=status, error_message=message, response_body=body)


def test_error_reasons_name_the_status_and_the_access_needed_but_never_the_body():
    need = "the Owner role in group acme"
    assert glc.describe_error(_http_error(403, "403 Forbidden"), need) == "HTTP 403: forbidden; needs the Owner role in group acme"
    assert glc.describe_error(_http_error(403, "403 Forbidden"), glc.NEEDS_ADMIN) == \
        "HTTP 403: forbidden; needs an instance administrator token"
    blocked = glc.describe_error(_http_error(403, "403 Forbidden - Your account has been blocked."), need)
    assert "(403 Forbidden - Your account has been blocked.)" in blocked
    assert glc.describe_error(_http_error(429, b"Retry later\n"), need) == \
        "HTTP 429: rate limited and not recovered within the retry budget"
    assert glc.describe_error(_http_error(500, "500 Internal Server Error", b"secret body"), need) == \
        "HTTP 500: server error, still failing after retries"
    assert glc.describe_error(GitlabAuthenticationError(response_code=401, error_message="401 Unauthorized"), need) == \
        "HTTP 401: credentials rejected (bad, expired or revoked token)"
    assert glc.describe_error(GitlabParsingError(error_message="Failed to parse the server message"), need) == \
        "malformed response: the body is not valid JSON"
    assert glc.describe_error(glc.MalformedResponse("the response was not a JSON list"), need) == \
        "malformed response: the response was not a JSON list"

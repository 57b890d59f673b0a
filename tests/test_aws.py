"""AWS IAM: the collector's pure transforms on recorded-shape payloads, then real boto3 over HTTP
against the sandbox's moto (paging, throttling, AccessDenied, malformed policies, no secret in
records or logs), then the demo estate end to end through the whole sweep.

moto cannot backdate (creation and last-use times are the wall clock of seeding), so the tests
that judge age move the sweep's injected ``now`` forward instead.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from detectors.rules import evaluate
from graph.build import build_graph
from sandbox import Sandbox, generate_app_key_pair
from scanner.collectors import aws as collector
from scanner.collectors.aws import (
    MalformedItem,
    MalformedResponse,
    Standing,
    action_privilege,
    document_privilege,
    parse_credential_report,
    principal_standing,
    transform_access_keys,
    transform_roles,
    transform_users,
    trust_of,
)
from scanner.config import SourcesConfig, load_config, parse_config
from scanner.demo import bundled_estate, demo_aws, prepare
from scanner.records import Account, Contract, Credential, Grant, MatchRules, Privilege, Status
from scanner.sweep import run_sweep

ACCOUNT = "123456789012"
ADMIN_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
READ_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "ec2:Describe*"], "Resource": "*"}]}

# --- recorded shapes (as AWS documents them; boto3 gives datetimes where these give ISO text) ----

CREDENTIAL_REPORT = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,"
    "mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,"
    "access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
    "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,"
    "cert_2_last_rotated\n"
    "<root_account>,arn:aws:iam::123456789012:root,2019-01-01T00:00:00+00:00,not_supported,2026-10-01T09:00:00+00:00,"
    "not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
    "alice,arn:aws:iam::123456789012:user/alice,2021-03-04T10:00:00+00:00,true,2026-10-30T08:00:00+00:00,"
    "2025-01-01T00:00:00+00:00,N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
    "ci-deployer,arn:aws:iam::123456789012:user/ci-deployer,2022-05-06T10:00:00+00:00,false,N/A,N/A,N/A,false,"
    "true,2022-05-06T10:05:00+00:00,2026-10-31T22:10:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
    "svc-sync,arn:aws:iam::123456789012:user/svc-sync,2023-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,"
    "true,2023-01-01T00:01:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
)


def test_credential_report_csv_is_parsed_and_the_root_row_left_out():
    rows, skipped = parse_credential_report(CREDENTIAL_REPORT.encode())
    assert skipped == []
    assert set(rows) == {"alice", "ci-deployer", "svc-sync"}
    alice, ci = rows["alice"], rows["ci-deployer"]
    assert alice["password_enabled"] is True and alice["mfa_active"] is True
    assert alice["password_last_used"] == datetime(2026, 10, 30, 8, tzinfo=timezone.utc)
    assert alice["password_next_rotation"] is None  # "N/A"
    assert ci["password_enabled"] is False and ci["password_last_used"] is None
    assert ci["access_key_1_last_used_date"] == datetime(2026, 10, 31, 22, 10, tzinfo=timezone.utc)
    assert ci["access_key_1_last_used_service"] == "s3"
    assert rows["svc-sync"]["access_key_1_last_used_date"] is None


def test_credential_report_bad_rows_and_bad_header():
    broken = CREDENTIAL_REPORT.replace("2022-05-06T10:05:00+00:00", "last tuesday")
    rows, skipped = parse_credential_report(broken)
    assert "ci-deployer" not in rows and {"alice", "svc-sync"} <= set(rows)
    assert len(skipped) == 1 and "access_key_1_last_rotated" in skipped[0] and "tuesday" not in skipped[0]
    with pytest.raises(MalformedResponse, match="password_enabled"):
        parse_credential_report("user,arn\nbob,arn:aws:iam::1:user/bob\n")


@pytest.mark.parametrize(
    ("statements", "level"),
    [
        ([{"Effect": "Allow", "Action": "*", "Resource": "*"}], Privilege.ADMIN),
        ([{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}], Privilege.ADMIN),
        ([{"Effect": "Allow", "Action": ["s3:GetObject", "iam:PassRole"], "Resource": "*"}], Privilege.ADMIN),
        ([{"Effect": "Allow", "Action": "*:Put*", "Resource": "*"}], Privilege.ADMIN),  # includes iam:PutUserPolicy
        ([{"Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::b/*"}], Privilege.WRITE),
        ([{"Effect": "Allow", "Action": ["s3:GetObject", "sqs:SendMessage"], "Resource": "*"}], Privilege.WRITE),
        ([{"Effect": "Allow", "Action": ["s3:Get*", "ec2:Describe*", "iam:List*", "iam:GenerateCredentialReport"],
           "Resource": "*"}], Privilege.READ),
        # PowerUserAccess: everything but IAM.
        ([{"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}], Privilege.WRITE),
        ([{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}], Privilege.ADMIN),
        ([{"Effect": "Deny", "Action": "*", "Resource": "*"}], Privilege.NONE),
    ],
)
def test_policy_document_privilege(statements, level):
    assert document_privilege({"Version": "2012-10-17", "Statement": statements}) == level


def test_policy_documents_as_iam_sends_them_and_malformed_ones():
    # IAM sends URL-encoded JSON; boto3 decodes it, and when it cannot it leaves the text.
    assert document_privilege(urllib.parse.quote(json.dumps(ADMIN_DOC))) == Privilege.ADMIN
    assert document_privilege({"Statement": {"Effect": "Allow", "Action": "s3:List*", "Resource": "*"}}) == Privilege.READ
    for bad, why in [
        ('%7B%22Version%22%3A%222012-10-17%22%2C%22Statem', "not valid JSON"),
        (["not", "a", "document"], "not a JSON object"),
        ({"Version": "2012-10-17"}, "Statement"),
        ({"Statement": [{"Effect": "Allow", "Resource": "*"}]}, "neither Action nor NotAction"),
        ({"Statement": [{"Effect": "Allow", "Action": 7}]}, "Action"),
        ({"Statement": [{"Effect": "Maybe", "Action": "*"}]}, "Effect"),
        ({"Statement": [{"Effect": "Allow", "Action": "s3"}]}, "service:action"),
    ]:
        with pytest.raises(MalformedItem, match=why):
            document_privilege(bad)
    assert action_privilege("sts:GetCallerIdentity") == Privilege.READ


def test_standing_leaves_out_an_unreadable_policy_and_keeps_the_rest():
    attached = [{"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
                {"PolicyName": "deploy", "PolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/deploy"}]
    inline = [{"PolicyName": "broken", "PolicyDocument": "%7B%22Statem"}]
    groups = [("admins", {"AttachedManagedPolicies": [{"PolicyName": "AdministratorAccess",
                                                      "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}]})]
    documents = {f"arn:aws:iam::{ACCOUNT}:policy/deploy": {"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}]}}
    s = principal_standing(attached, inline, documents)
    assert s.privilege == Privilege.WRITE and s.policies == ("ReadOnlyAccess", "deploy")
    assert s.unreadable == ("inline:broken: policy document is not valid JSON",)
    assert principal_standing(attached, [], documents, groups).privilege == Privilege.ADMIN
    # A customer policy named like an AWS one is judged by its document, not its name.
    fake = [{"PolicyName": "ReadOnlyAccess", "PolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/ReadOnlyAccess"}]
    assert principal_standing(fake, [], {fake[0]["PolicyArn"]: ADMIN_DOC}).privilege == Privilege.ADMIN


def test_trust_policy_principals():
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:root", "444455556666",
                                                  f"arn:aws:iam::{ACCOUNT}:role/ci", "AIDAGONEUSER"]},
         "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "x-1"}}},
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com", "Federated": "cognito-identity.amazonaws.com"},
         "Action": ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"]},
    ]}
    t = trust_of(doc, ACCOUNT)
    assert t.accounts == {"111122223333", "444455556666"}
    assert t.internal == {f"arn:aws:iam::{ACCOUNT}:role/ci"} and t.unresolved == {"AIDAGONEUSER"}
    assert t.services == {"ec2.amazonaws.com"} and t.federated == {"cognito-identity.amazonaws.com"}
    assert t.external_id is True
    anyone = trust_of({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}]}, ACCOUNT)
    assert anyone.accounts == {"*"} and anyone.external_id is False


def _user(name, **extra):
    return {"Path": "/", "UserName": name, "UserId": f"AIDA{name.upper()}", "Arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
            "CreateDate": "2022-05-06T10:00:00Z", **extra}


def test_users_become_people_or_service_accounts_with_owners_and_privilege():
    rows, _ = parse_credential_report(CREDENTIAL_REPORT)
    users = [
        _user("alice", Tags=[{"Key": "email", "Value": "Alice@acme.example"}], GroupList=["admins"]),
        _user("ci-deployer", Tags=[{"Key": "owner", "Value": "heidi@acme.example"}, {"Key": "contract", "Value": "C-100"}],
              AttachedManagedPolicies=[{"PolicyName": "AdministratorAccess", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}]),
        _user("svc-sync", UserPolicyList=[{"PolicyName": "ok", "PolicyDocument": READ_DOC},
                                          {"PolicyName": "bad", "PolicyDocument": "%7B%22Sta"}]),
        _user("robot", Tags=[{"Key": "account_type", "Value": "service"}]),  # not in the report: tag decides
        {"UserId": "AIDANONAME"},  # malformed: skipped, the rest kept
    ]
    groups = {"admins": {"GroupName": "admins", "AttachedManagedPolicies": [], "GroupPolicyList": [
        {"PolicyName": "all", "PolicyDocument": ADMIN_DOC}]}}
    batch = transform_users("aws", ACCOUNT, users, groups=groups, documents={}, report=rows)
    acc = {r.name: r for r in batch.records if isinstance(r, Account)}
    assert set(acc) == {"alice", "ci-deployer", "svc-sync", "robot"}
    alice = acc["alice"]
    assert alice.is_human and alice.email == "alice@acme.example" and alice.mfa_enabled is True
    assert alice.privilege == Privilege.ADMIN and alice.attributes["policies"] == ["group:admins:inline:all"]
    assert alice.last_active_at == datetime(2026, 10, 30, 8, tzinfo=timezone.utc)
    ci = acc["ci-deployer"]
    assert not ci.is_human and ci.account_type == "service_account" and ci.email is None
    assert ci.owners[0].ref == "heidi@acme.example" and "tag" in ci.owners[0].evidence
    assert ci.privilege == Privilege.ADMIN and ci.attributes["tags"]["contract"] == "C-100"
    assert ci.key == "aws:user:ci-deployer" and ci.inventory == f"aws:{ACCOUNT}:users"
    assert acc["svc-sync"].privilege == Privilege.READ and acc["svc-sync"].attributes["unreadable_policies"]
    assert acc["robot"].account_type == "service_account" and acc["robot"].attributes["classified_by"] == "tag service"
    assert any("'svc-sync' policy inline:bad" in s for s in batch.skipped)
    assert any(s.startswith("user #4") and "UserName" in s for s in batch.skipped)
    grants = [r for r in batch.records if isinstance(r, Grant)]
    assert {(g.subject_key, g.privilege) for g in grants} >= {("aws:user:ci-deployer", Privilege.ADMIN)}
    assert all(g.resource_key == f"aws:account:{ACCOUNT}" for g in grants)


def test_without_the_report_console_access_decides():
    users = [_user("carol", Tags=[{"Key": "email", "Value": "carol@acme.example"}]), _user("batch-job"), _user("dana")]
    batch = transform_users("aws", ACCOUNT, users, groups={}, documents={}, report=None,
                            console_access={"carol": True, "batch-job": False, "dana": None})
    acc = {r.name: r for r in batch.records if isinstance(r, Account)}
    assert acc["carol"].is_human and not acc["batch-job"].is_human
    assert not acc["dana"].is_human and "unknown" in acc["dana"].attributes["classified_by"]
    assert acc["carol"].mfa_enabled is None


def test_access_keys_keep_the_id_and_take_their_users_privilege():
    rows, _ = parse_credential_report(CREDENTIAL_REPORT)
    keys = [
        {"UserName": "ci-deployer", "AccessKeyId": "AKIAEXAMPLECIDEPLOY1", "Status": "Active", "CreateDate": "2022-05-06T10:05:00Z",
         "LastUsed": {"ServiceName": "N/A", "Region": "N/A"}},
        {"UserName": "svc-sync", "AccessKeyId": "AKIAEXAMPLESVCSYNC01", "Status": "Inactive", "CreateDate": "2023-01-01T00:01:00Z",
         "LastUsed": {"LastUsedDate": "2026-01-02T03:04:05Z", "ServiceName": "s3", "Region": "eu-west-1"}},
        {"UserName": "svc-sync", "AccessKeyId": "AKIAEXAMPLESVCSYNC02", "Status": "Revoked", "CreateDate": "2023-01-02T00:00:00Z"},
    ]
    standing = {"ci-deployer": Standing(Privilege.ADMIN, ("AdministratorAccess",))}
    batch = transform_access_keys("aws", ACCOUNT, keys, report=rows, standing=standing)
    creds = {r.attributes["access_key_id"]: r for r in batch.records}
    assert set(creds) == {"AKIAEXAMPLECIDEPLOY1", "AKIAEXAMPLESVCSYNC01"}
    assert len(batch.skipped) == 1 and "Status" in batch.skipped[0]
    ci = creds["AKIAEXAMPLECIDEPLOY1"]
    assert ci.key == "aws:access_key:AKIAEXAMPLECIDEPLOY1" and ci.name == "ci-deployer access key …LOY1"
    assert ci.account_key == "aws:user:ci-deployer" and ci.credential_type == "access_key"
    assert ci.privilege == Privilege.ADMIN and ci.scopes == ("AdministratorAccess",)
    # GetAccessKeyLastUsed said nothing: the credential report's slot 1 fills in.
    assert ci.last_used_at == datetime(2026, 10, 31, 22, 10, tzinfo=timezone.utc)
    assert ci.rotated_at == datetime(2022, 5, 6, 10, 5, tzinfo=timezone.utc)
    sync = creds["AKIAEXAMPLESVCSYNC01"]
    assert sync.status == Status.SUSPENDED and sync.attributes["last_used_service"] == "s3"
    assert sync.privilege == Privilege.READ and sync.attributes["privilege_known"] is False


def _role(name, trust, **extra):
    return {"Path": "/", "RoleName": name, "RoleId": f"AROA{name.upper()}", "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "CreateDate": "2024-01-01T00:00:00Z", "AssumeRolePolicyDocument": urllib.parse.quote(json.dumps(trust)), **extra}


def _trusting(*principals, external_id=None):
    stmt = {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "sts:AssumeRole"}
    if external_id:
        stmt["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": "2012-10-17", "Statement": [stmt]}


def test_roles_and_the_external_accounts_that_may_assume_them():
    roles = [
        _role("vendor-ro", _trusting("arn:aws:iam::111122223333:root", external_id="g-1"),
              AttachedManagedPolicies=[{"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
              RoleLastUsed={"LastUsedDate": "2026-10-01T00:00:00Z", "Region": "us-east-1"},
              Tags=[{"Key": "owner", "Value": "bob@acme.example"}]),
        _role("vendor-admin", _trusting("111122223333"), RolePolicyList=[{"PolicyName": "all", "PolicyDocument": ADMIN_DOC}]),
        _role("app", {"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
              InstanceProfileList=[{"InstanceProfileName": "app"}]),
        _role("AWSServiceRoleForSupport", {"Statement": [{"Effect": "Allow", "Principal": {"Service": "support.amazonaws.com"},
                                                          "Action": "sts:AssumeRole"}]}, Path="/aws-service-role/support.amazonaws.com/"),
        {**_role("odd", {}), "AssumeRolePolicyDocument": "%7Bnope"},
    ]
    batch = transform_roles("aws", ACCOUNT, roles, documents={})
    acc = {r.key: r for r in batch.records if isinstance(r, Account)}
    ro = acc["aws:role:vendor-ro"]
    assert ro.account_type == "service_account" and ro.privilege == Privilege.READ
    assert ro.last_active_at == datetime(2026, 10, 1, tzinfo=timezone.utc) and ro.owners[0].ref == "bob@acme.example"
    assert ro.attributes["trusted_accounts"] == ["111122223333"] and ro.attributes["requires_external_id"] is True
    assert acc["aws:role:app"].attributes["instance_profiles"] == ["app"]
    assert acc["aws:role:AWSServiceRoleForSupport"].account_type == "service_linked_role"
    assert acc["aws:role:odd"].attributes["trusted_accounts"] is None  # kept, its trust policy unreadable
    assert any("'odd' trust policy" in s for s in batch.skipped)
    ext = acc["aws:external_account:111122223333"]
    assert ext.name == "111122223333" and ext.account_type == "app" and ext.third_party and not ext.is_human
    assert ext.privilege == Privilege.ADMIN  # the most it can assume
    assert ext.attributes["can_assume"] == ["vendor-admin", "vendor-ro"] and ext.attributes["external_id_required"] is False
    grants = {(g.subject_key, g.resource_key): g for g in batch.records if isinstance(g, Grant)}
    assert grants[("aws:external_account:111122223333", "aws:role:vendor-ro")].privilege == Privilege.READ
    # A contract naming the account id covers the external account in the graph.
    contract = Contract(key="contracts:contract:C-100", source="contracts", inventory="contracts:register", name="C-100",
                        contract_id="C-100", counterparty="Globex", contract_type="vendor", start=None, end=None,
                        status="ended", sponsor_email=None, match=MatchRules(name_patterns=("111122223333",)))
    g = build_graph([*batch.records, contract])
    assert g.has_edge("contracts:contract:C-100", "aws:external_account:111122223333")


# --- real boto3 against the sandbox's moto ----------------------------------------------------------

BULK_USERS = 2
TEST_ESTATE = {
    "aws": {
        "enforce_auth": True,  # moto checks signatures and the caller's policies
        "policies": [
            {"name": "deploy", "document": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "*"}]}},
            # What nhiscan needs, and no more. (SecurityAudit works too, but moto takes ~0.3 s to
            # evaluate its thousands of actions on every request.)
            {"name": "nhiscan-read", "document": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*", "iam:GenerateCredentialReport"], "Resource": "*"}]}},
        ],
        "groups": [{"name": "admins", "policies": ["AdministratorAccess"]}],
        "users": [
            *({"name": f"bulk-{n:02d}"} for n in range(BULK_USERS)),
            {"name": "scanner", "policies": ["nhiscan-read"], "tags": {"owner": "alice@acme.example"},
             "access_keys": [{"used": True}]},
            # Throttled mid-listing (key 0: once, then fine; key 1: ListRoles always).
            {"name": "scanner-throttled", "policies": ["nhiscan-read"],
             "access_keys": [{"faults": [{"action": "GetAccessKeyLastUsed", "fault": "throttling", "after": 6, "times": 1}]},
                             {"faults": [{"action": "ListRoles", "fault": "throttling"}]}]},
            {"name": "scanner-malformed", "policies": ["nhiscan-read"],
             "access_keys": [{"faults": [{"action": "Get*Policy", "fault": "malformed_policy"}]}]},
            {"name": "restricted", "policies": ["nhiscan-read"], "inline_policies": {"no-roles": {
                "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iam:ListRoles", "Resource": "*"}]}},
             "access_keys": [{"faults": [{"action": "GenerateCredentialReport", "fault": "server_error", "times": 1}]}]},
            {"name": "ci-deployer", "policies": ["AdministratorAccess"], "tags": {"owner": "heidi@acme.example"},
             "access_keys": [{"used": True}, {"status": "Inactive"}]},
            {"name": "alice", "tags": {"email": "alice@acme.example"}, "console_password": True, "mfa": True, "groups": ["admins"]},
            {"name": "deployer", "policies": ["deploy"], "inline_policies": {"extra": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]}}, "access_keys": [{}]},
        ],
        "roles": [
            {"name": "vendor-globex-readonly", "trust": {"accounts": ["111122223333"], "external_id": "g-42"},
             "policies": ["ReadOnlyAccess"], "tags": {"owner": "bob@acme.example"}, "used": True},
            {"name": "app-server", "trust": {"services": ["ec2.amazonaws.com"]}, "instance_profile": "app-server",
             "inline_policies": {"logs": {"Version": "2012-10-17", "Statement": [
                 {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}]}}},
            *({"name": f"batch-{n}", "trust": {"services": ["batch.amazonaws.com"]}} for n in range(3)),
        ],
    }
}
ALL_USERS = {"scanner", "scanner-throttled", "scanner-malformed", "restricted", "ci-deployer", "alice", "deployer"} | {f"bulk-{n:02d}" for n in range(BULK_USERS)}


def _source(sb, user, index=0, monkeypatch=None, **extra):
    """A config naming the user's key pair in environment variables, as a real installation would."""
    key_id, secret = sb.apps["aws"].access_key(user, index)
    monkeypatch.setenv("NHISCAN_TEST_AWS_KEY_ID", key_id)
    monkeypatch.setenv("NHISCAN_TEST_AWS_SECRET", secret)
    cfg = parse_config({"sources": {"aws": [{
        "base_url": sb.url("aws"), "access_key_id_env": "NHISCAN_TEST_AWS_KEY_ID",
        "secret_access_key_env": "NHISCAN_TEST_AWS_SECRET", "timeout": 5, "max_retries": 3, **extra}]}})
    return cfg.sources.aws[0], cfg


def _collect(sb, user, monkeypatch, index=0, **extra):
    source, cfg = _source(sb, user, index, monkeypatch, **extra)
    return collector.collect(source, cfg, hmac_key=b"k" * 32)


def _coverage(result):
    return {c.inventory.rsplit(":", 1)[1]: c for c in result.coverage}


class TestAgainstTheSandbox:
    """One sandbox for the class: moto keeps one state per process, so AWS sandboxes take turns."""

    @pytest.fixture(scope="class")
    @classmethod
    def sb(cls):
        with Sandbox(TEST_ESTATE) as sandbox:
            yield sandbox

    @pytest.fixture(autouse=True)
    def _fresh_log(self, sb):
        sb.clear_request_log()

    @pytest.fixture(scope="class")
    @classmethod
    def full_sweep(cls, sb):
        """One sweep of everything with the scanner's key, 4 items a page, and the requests it made."""
        sb.clear_request_log()
        with pytest.MonkeyPatch.context() as mp:
            result = _collect(sb, "scanner", mp, page_size=4)
        return result, [e for e in sb.request_log if e["vendor"] == "aws"]

    def test_every_inventory_is_read_page_by_page(self, sb, full_sweep):
        result, calls = full_sweep
        cov = _coverage(result)
        assert set(cov) == {"credential_report", "users", "access_keys", "roles"} and all(c.ok for c in cov.values()), cov
        assert all(c.inventory.startswith(f"aws:{ACCOUNT}:") for c in result.coverage)
        users = {r.name for r in result.records if isinstance(r, Account) and r.key.startswith("aws:user:")}
        assert users == ALL_USERS
        roles = {r.name for r in result.records if isinstance(r, Account) and r.key.startswith("aws:role:")}
        assert roles == {"vendor-globex-readonly", "app-server"} | {f"batch-{n}" for n in range(3)}
        list_users = [e for e in calls if e["action"] == "ListUsers"]
        assert len(list_users) == -(-len(ALL_USERS) // 4)  # ceil: every page fetched, once
        assert len([e for e in calls if e["action"] == "ListRoles"]) == 2  # 5 roles, 4 a page
        key_id = sb.apps["aws"].access_key("scanner")[0]
        assert {e["key"] for e in calls} == {key_id[-4:]}  # only the configured key signed anything
        assert all(r.inventory in {c.inventory for c in result.coverage} for r in result.records)
        assert result.warnings == []

    def test_records_say_what_iam_says(self, sb, full_sweep):
        result, _calls = full_sweep
        recs = {r.key: r for r in result.records}
        emu = sb.apps["aws"]
        ci = recs["aws:user:ci-deployer"]
        assert ci.privilege == Privilege.ADMIN and not ci.is_human and ci.owners[0].ref == "heidi@acme.example"
        alice = recs["aws:user:alice"]
        assert alice.is_human and alice.email == "alice@acme.example" and alice.mfa_enabled is True
        assert alice.privilege == Privilege.ADMIN and alice.attributes["groups"] == ["admins"]
        assert recs["aws:user:deployer"].privilege == Privilege.WRITE
        assert recs["aws:user:deployer"].attributes["policies"] == ["deploy", "inline:extra"]
        assert recs["aws:user:bulk-00"].privilege == Privilege.NONE
        used_id, _ = emu.access_key("ci-deployer", 0)
        inactive_id, _ = emu.access_key("ci-deployer", 1)
        used, inactive = recs[f"aws:access_key:{used_id}"], recs[f"aws:access_key:{inactive_id}"]
        # The seeding made one real signed call with the used key; the other was never used.
        assert used.last_used_at is not None and used.attributes["last_used_service"] == "iam"
        assert inactive.last_used_at is None and inactive.status == Status.SUSPENDED
        assert used.privilege == Privilege.ADMIN and used.account_key == "aws:user:ci-deployer"
        assert used.created_at is not None and used.rotated_at is not None
        deployer_key = recs[f"aws:access_key:{emu.access_key('deployer')[0]}"]
        assert deployer_key.last_used_at is None
        vendor = recs["aws:role:vendor-globex-readonly"]
        assert vendor.last_active_at is not None and vendor.privilege == Privilege.READ  # assumed once while seeding
        assert vendor.attributes["requires_external_id"] is True
        assert recs["aws:role:app-server"].last_active_at is None
        assert recs["aws:role:app-server"].attributes["instance_profiles"] == ["app-server"]
        ext = recs["aws:external_account:111122223333"]
        assert ext.third_party and ext.attributes["can_assume"] == ["vendor-globex-readonly"]
        grant = recs["aws:grant:aws:external_account:111122223333->aws:role:vendor-globex-readonly"]
        assert isinstance(grant, Grant) and grant.privilege == Privilege.READ

    def test_throttling_is_waited_out(self, sb, monkeypatch):
        result = _collect(sb, "scanner-throttled", monkeypatch, account_id=ACCOUNT, inventories=["access_keys"])
        assert [c.ok for c in result.coverage] == [True], result.coverage
        calls = [(e["status"], e["fault"]) for e in sb.request_log if e["action"] == "GetAccessKeyLastUsed"]
        assert calls[6:8] == [(400, "throttling"), (200, None)]
        assert len([c for c in calls if c == (200, None)]) == 8  # every key's last use was read in the end
        assert len([r for r in result.records if isinstance(r, Credential)]) == 8

    def test_throttling_that_never_stops_is_a_gap_and_the_rest_is_read(self, sb, monkeypatch):
        result = _collect(sb, "scanner-throttled", monkeypatch, index=1, max_retries=1, account_id=ACCOUNT,
                          inventories=["credential_report", "roles"])
        cov = _coverage(result)
        assert not cov["roles"].ok
        assert cov["roles"].reason == "throttled (Throttling) on iam:ListRoles and not recovered within 2 attempts"
        assert [e["fault"] for e in sb.request_log if e["action"] == "ListRoles"] == ["throttling", "throttling"]
        assert cov["credential_report"].ok
        assert not [r for r in result.records if r.key.startswith("aws:role:")]  # a gap, never an empty listing

    def test_access_denied_on_one_inventory_is_a_gap_naming_the_permission(self, sb, monkeypatch):
        result = _collect(sb, "restricted", monkeypatch, inventories=["credential_report", "users", "roles"])
        cov = _coverage(result)
        assert not cov["roles"].ok and cov["roles"].reason.startswith("access denied (AccessDenied): needs iam:ListRoles")
        assert cov["users"].ok and cov["credential_report"].ok
        # ... after a ServiceFailure (500) that the retry got past.
        assert [(e["status"], e["fault"]) for e in sb.request_log if e["action"] == "GenerateCredentialReport"] == [
            (500, "server_error"), (200, None)]
        assert not [r for r in result.records if r.key.startswith(("aws:role:", "aws:external_account:"))]
        assert "aws:user:ci-deployer" in {r.key for r in result.records}

    def test_malformed_policy_documents_are_skipped_with_a_warning(self, sb, monkeypatch, caplog):
        caplog.set_level(logging.WARNING, logger="nhiscan.collectors.aws")
        result = _collect(sb, "scanner-malformed", monkeypatch, inventories=["users", "roles"])
        assert all(c.ok for c in result.coverage)
        recs = {r.key: r for r in result.records}
        deployer = recs["aws:user:deployer"]
        # The inline policy's document arrived cut in half: left out, the managed one still counts.
        assert deployer.attributes["policies"] == ["deploy"] and deployer.privilege == Privilege.WRITE
        assert deployer.attributes["unreadable_policies"] == ["inline:extra: policy document is not valid JSON"]
        assert any("'deployer' policy inline:extra" in w for w in result.warnings)
        assert any("'app-server' policy inline:logs" in w for w in result.warnings)
        assert "skipped malformed item" in caplog.text and "aws:123456789012:users" in caplog.text
        assert "aws:role:app-server" in recs  # the role itself is kept

    def test_no_secret_access_key_in_records_warnings_or_logs(self, sb, monkeypatch, caplog, capfd):
        caplog.set_level(logging.DEBUG)
        result = _collect(sb, "scanner-malformed", monkeypatch)  # warnings too
        out, err = capfd.readouterr()
        emu = sb.apps["aws"]
        secrets_ = [emu.access_key(u, i)[1] for (u, i) in emu.access_key_ids.values()]
        haystack = "\n".join([json.dumps([r.to_dict() for r in result.records], default=str),
                              json.dumps([c.reason for c in result.coverage]), "\n".join(result.warnings),
                              caplog.text, out, err])
        assert len(secrets_) == 8 and result.warnings
        for secret in secrets_:
            assert secret not in haystack
        # The key ids are kept: they are how a leaked key is tied to its record.
        assert emu.access_key("ci-deployer")[0] in haystack

    def test_a_second_aws_sandbox_in_the_same_process_is_refused(self, sb, monkeypatch):
        with pytest.raises(RuntimeError, match="moto keeps one state per process"):
            Sandbox({"aws": {"users": [{"name": "intruder"}]}}).start()
        # ... and this one's estate is untouched.
        result = _collect(sb, "scanner", monkeypatch, inventories=["users"])
        assert "aws:user:ci-deployer" in {r.key for r in result.records}
        assert "aws:user:intruder" not in {r.key for r in result.records}

    def test_wrong_secret_is_a_gap_on_every_inventory(self, sb, monkeypatch):
        key_id, _ = sb.apps["aws"].access_key("scanner")
        monkeypatch.setenv("NHISCAN_TEST_AWS_KEY_ID", key_id)
        monkeypatch.setenv("NHISCAN_TEST_AWS_SECRET", "wrong-secret-value-0000")
        cfg = parse_config({"sources": {"aws": [{"base_url": sb.url("aws"), "access_key_id_env": "NHISCAN_TEST_AWS_KEY_ID",
                                                   "secret_access_key_env": "NHISCAN_TEST_AWS_SECRET", "max_retries": 0}]}})
        result = collector.collect(cfg.sources.aws[0], cfg, hmac_key=b"k")
        assert len(result.coverage) == 4 and not any(c.ok for c in result.coverage)
        assert all("SignatureDoesNotMatch" in c.reason and "sts:GetCallerIdentity" in c.reason for c in result.coverage)
        assert all(c.inventory.startswith("aws:*:") for c in result.coverage)  # the account is unknown
        assert not any("wrong-secret" in c.reason for c in result.coverage)


def test_missing_credentials_are_a_gap_before_any_request(monkeypatch):
    monkeypatch.delenv("NHISCAN_TEST_AWS_NOPE", raising=False)
    cfg = parse_config({"sources": {"aws": [{"base_url": "http://127.0.0.1:9", "account_id": ACCOUNT,
                                               "access_key_id_env": "NHISCAN_TEST_AWS_NOPE",
                                               "secret_access_key_env": "NHISCAN_TEST_AWS_NOPE"}]}})
    result = collector.collect(cfg.sources.aws[0], cfg, hmac_key=b"k")
    assert [c.inventory for c in result.coverage] == [f"aws:{ACCOUNT}:{s}" for s in collector.INVENTORIES]
    assert all(not c.ok and "NHISCAN_TEST_AWS_NOPE is not set" in c.reason for c in result.coverage)


# --- the demo estate, end to end ------------------------------------------------------------------------


def _demo_data(extra_c100_names=()):
    data = yaml.safe_load(bundled_estate().read_text())
    for c in data["contracts"]:
        if c["id"] == "C-100":
            c["match_names"] = list(c.get("match_names", [])) + list(extra_c100_names)
    return data


def test_demo_estate_end_to_end(tmp_path):
    """The demo estate's AWS account through the whole sweep, configured as ``nhiscan demo`` does,
    with our own contract register in which C-100 (Globex, ended 45 days ago) also names
    Globex's AWS account."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with Sandbox(_demo_data(["111122223333"]), now=now) as sb:
        aws = demo_aws(sb)
        assert aws is not None and aws[0] == sb.url("aws") and aws[1] == ACCOUNT
        config_path = prepare(sb, tmp_path, generate_app_key_pair()[0], vendors={"aws"})
        text = config_path.read_text()
        assert "[[sources.aws]]" in text and 'secret_access_key_file = "aws-secret-access-key.txt"' in text
        assert aws[3] not in text and oct((tmp_path / "aws-secret-access-key.txt").stat().st_mode & 0o777) == "0o600"
        assert "111122223333" in (tmp_path / "contracts.toml").read_text()
        config = load_config(config_path)
        # Only the AWS account: the GitHub side of the demo has its own end-to-end tests.
        config = config.model_copy(update={"sources": SourcesConfig(aws=config.sources.aws)})
        outcome = run_sweep(config, now=now + timedelta(minutes=1))
    cov = {c.inventory: c for c in outcome.coverage if c.source == "aws"}
    assert set(cov) == {f"aws:{ACCOUNT}:{s}" for s in collector.INVENTORIES} and all(c.ok for c in cov.values()), cov
    found = {(f["rule_id"], f["subject"]["name"]) for f in outcome.findings}
    ext = next(f for f in outcome.findings if f["subject"]["key"] == "aws:external_account:111122223333"
               and f["rule_id"] == "contract-ended")
    assert ext["contracts"][0]["id"] == "C-100" and "111122223333" in ext["contracts"][0]["evidence"]
    assert [r["key"] for r in ext["reach"]] == ["aws:role:vendor-globex-readonly"]
    names = [d["name"] for _, d in outcome.graph.nodes(data=True)]
    key = lambda user: next(n for n in names if n.startswith(f"{user} access key"))  # noqa: E731
    expected = {
        ("excessive-privilege", "ci-deployer"), ("excessive-privilege", key("ci-deployer")),
        ("owner-departed", "reporting-export"), ("owner-departed", key("reporting-export")),
        ("contract-ended", "globex-s3-sync"), ("contract-ended", key("globex-s3-sync")),
        ("contract-ended", "111122223333"),
    }
    assert expected <= found, expected - found
    departed = next(f for f in outcome.findings if f["rule_id"] == "owner-departed" and f["subject"]["name"] == "reporting-export")
    assert departed["owners"][0]["email"] == "eve@acme.example" and "tag" in departed["owners"][0]["evidence"][0]
    assert ("owner-missing", "111122223333") not in found  # C-100's sponsor answers for it now
    quiet = {"reporting-readonly", "vendor-globex-readonly", "nhiscan-audit", "alice"}
    assert not [k for k in found if k[1] in quiet]
    assert not [k for k in found if k[0] == "dormant"]  # everything was just used
    # The rules judge by the sweep's clock: 200 days on, with nothing used since, keys and roles are dormant.
    later = evaluate(outcome.graph, now + timedelta(days=200))
    dormant = {f["subject"]["name"] for f in later if f["rule_id"] == "dormant"}
    assert {key("ci-deployer"), key("nhiscan-audit"), "vendor-globex-readonly", "reporting-readonly"} <= dormant
    report = (tmp_path / "reports" / "latest.json").read_text()
    assert aws[3] not in report and aws[3] not in (tmp_path / "nhiscan.db").read_bytes().decode("latin-1")

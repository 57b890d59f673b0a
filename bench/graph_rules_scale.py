"""How graph building and rule evaluation scale with the estate's size.

Builds a synthetic estate of N credentials (deploy keys and fine-grained PATs
spread over repos, owned by people, some covered by contracts), times
``build_graph`` + ``evaluate`` at a baseline size and at 10x that size in the
same run, and prints the cost per 1,000 credentials and the ratio between the
two. A ratio near 1.0 means linear scaling; a quadratic hot spot shows up as a
ratio near 10.

    python bench/graph_rules_scale.py [--base 2000] [--factor 10]
"""

from __future__ import annotations

import argparse
import time
from datetime import date, datetime, timedelta, timezone

from detectors.rules import evaluate
from graph.build import build_graph
from scanner.records import Account, Contract, Credential, Grant, MatchRules, Ownership, Person, Privilege, Resource

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def estate(n_credentials: int) -> list:
    people = max(10, n_credentials // 20)
    repos = max(5, n_credentials // 50)
    recs: list = [Resource(key="github:org:acme", source="github", inventory="github:acme:repos", name="acme", resource_type="org")]
    for r in range(repos):
        recs.append(Resource(key=f"github:repo:acme/r{r}", source="github", inventory="github:acme:repos", name=f"acme/r{r}",
                             resource_type="repo", parent_key="github:org:acme"))
    for p in range(people):
        email = f"p{p}@acme.example"
        recs.append(Person(key=f"hr:person:{email}", source="hr", inventory="hr:people", name=email, email=email,
                           status="departed" if p % 17 == 0 else "active"))
        recs.append(Account(key=f"github:user:p{p}", source="github", inventory="github:acme:members", name=f"p{p}", login=f"p{p}",
                            email=email, account_type="user", is_human=True))
    for c in range(max(3, n_credentials // 500)):
        recs.append(Contract(key=f"contracts:contract:C{c}", source="contracts", inventory="contracts:register", name=f"C{c}",
                             contract_id=f"C{c}", counterparty=f"Vendor {c}", contract_type="vendor", start=date(2024, 1, 1),
                             end=date(2026, 10, 1) if c % 2 else date(2027, 6, 1), status="active", sponsor_email="p1@acme.example",
                             match=MatchRules(name_patterns=(f"vendor{c}-*",))))
    for i in range(n_credentials):
        owner = f"github:user:p{i % people}"
        repo = f"github:repo:acme/r{i % repos}"
        name = f"vendor{i % 7}-key{i}" if i % 5 == 0 else f"key{i}"
        cred = Credential(key=f"github:deploy_key:acme/r{i % repos}/{i}", source="github", inventory=f"github:acme/r{i % repos}:deploy_keys",
                          name=name, credential_type="deploy_key" if i % 2 else "fine_grained_pat",
                          privilege=Privilege.WRITE if i % 3 == 0 else Privilege.READ, created_at=NOW - timedelta(days=i % 900),
                          last_used_at=NOW - timedelta(days=i % 300), account_key=owner if i % 2 == 0 else None,
                          owners=(Ownership(ref=owner, evidence="bench"),))
        recs.append(cred)
        recs.append(Grant(key=f"g{i}", source="github", inventory=cred.inventory, name="g", subject_key=cred.key, resource_key=repo,
                          privilege=cred.privilege))
    return recs


def timed(n: int) -> tuple[float, int]:
    recs = estate(n)
    start = time.process_time()
    findings = evaluate(build_graph(recs), NOW)
    return time.process_time() - start, len(findings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=int, default=2000, help="credentials in the baseline estate")
    ap.add_argument("--factor", type=int, default=10, help="how many times larger the second estate is")
    args = ap.parse_args()
    base_s, base_f = timed(args.base)
    big_s, big_f = timed(args.base * args.factor)
    per_base = base_s / args.base * 1000
    per_big = big_s / (args.base * args.factor) * 1000
    print(f"baseline  {args.base:>8} credentials: {base_s:7.2f} CPU-s, {base_f} findings, {per_base:.3f} CPU-s per 1,000")
    print(f"{args.factor:>2}x       {args.base * args.factor:>8} credentials: {big_s:7.2f} CPU-s, {big_f} findings, {per_big:.3f} CPU-s per 1,000")
    print(f"ratio (cost per credential, {args.factor}x / baseline): {per_big / per_base:.2f}  (1.0 = linear)")


if __name__ == "__main__":
    main()

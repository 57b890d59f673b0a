"""``python -m detectors.secrets [--builtin-only] [--workers N] PATH...``

Scans files or directories (all files, like ``detect-secrets scan --all-files``)
and prints ``{"results": {filename: [{type, hashed_secret, line_number}]}}`` in
detect-secrets' baseline shape, without secret values. Used by the benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys

from detectors.secrets.engine import SecretScanner, iter_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detectors.secrets", description=__doc__)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--builtin-only", action="store_true", help="only detect-secrets' built-in plugins")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)

    files = sorted(iter_files(*args.paths))
    with SecretScanner(workers=args.workers, extra_plugins=not args.builtin_only) as scanner:
        hits = scanner.scan_files(files)
    results: dict[str, list[dict]] = {}
    for hit in hits:
        results.setdefault(hit.filename, []).append(
            {"type": hit.type, "hashed_secret": hit.hashed_secret, "line_number": hit.line_number}
        )
    json.dump({"results": results}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

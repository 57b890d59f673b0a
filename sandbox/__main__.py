"""``python -m sandbox ESTATE.yaml``: run the emulators in the foreground until Ctrl-C.

Prints each emulator's base URL and the (fake) credentials the estate defines, so a person can
point a client or ``nhiscan`` at it. With ``--app-key-dir DIR``, GitHub Apps that have no
``public_key`` in the estate get a fresh RSA key pair: the public half is registered with the
emulator and the private half is written to ``DIR/app-<id>.pem`` for the client to sign JWTs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

from .estate import EstateError, parse_time
from .server import Sandbox, generate_app_key_pair


def _generate_key(path: Path) -> str:
    """Write a new App private key to ``path`` (0600) and return its public PEM."""
    private, public = generate_app_key_pair()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    return public.decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("estate", help="path to an estate YAML file (see sandbox/README.md)")
    parser.add_argument("--port", type=int, default=0, help="GitHub emulator port (default: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--now", help="clock for relative times when the estate has no `now:` (ISO 8601)")
    parser.add_argument("--app-key-dir", type=Path, help="generate keys for GitHub Apps without public_key here")
    parser.add_argument("-q", "--quiet", action="store_true", help="don't print one line per request")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(name)s: %(message)s")
    now = None
    if args.now:
        from datetime import datetime, timezone

        try:
            now = parse_time(args.now, datetime.now(timezone.utc))
        except ValueError as e:
            parser.error(f"--now: {e}")
    try:
        sandbox = Sandbox(args.estate, now=now, host=args.host, port=args.port)
    except EstateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    key_notes: dict[int, str] = {}
    for app in sandbox.estate.github.apps:
        if app.public_key:
            key_notes[app.id] = "public key from the estate"
        elif args.app_key_dir:
            path = args.app_key_dir / f"app-{app.id}.pem"
            sandbox.github.register_app_key(app.id, _generate_key(path))
            key_notes[app.id] = f"private key written to {path}"
        else:
            key_notes[app.id] = "no key (JWT auth disabled; use --app-key-dir)"

    with sandbox:
        estate = sandbox.estate
        print(f"nhiscan sandbox: estate {args.estate} (clock {estate.now:%Y-%m-%dT%H:%M:%SZ})")
        for name, url in sandbox.urls.items():
            print(f"  {name:<8} {url}    control: {sandbox.root_url(name)}/_emu/requests")
        print("GitHub tokens (classic PATs, fake):")
        for tok in estate.github.tokens:
            scopes = ", ".join(tok.scopes) or "no scopes"
            faults = f"  faults on: {', '.join(f.path for f in tok.faults)}" if tok.faults else ""
            print(f"  {tok.token}  user {tok.login}  [{scopes}]{faults}")
        if estate.github.apps:
            print("GitHub Apps:")
            for app in estate.github.apps:
                inst = ", ".join(f"{org}={iid}" for org, iid in app.installations.items()) or "none"
                print(f"  {app.id} {app.slug}  installations: {inst}  ({key_notes[app.id]})")
        print("Ctrl-C to stop.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())

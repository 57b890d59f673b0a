"""Local, wire-compatible emulators of the vendors' APIs, seeded from an estate file.

``Sandbox`` runs them on loopback for tests and demos; ``load_estate`` parses and validates an
estate (see ``sandbox/README.md`` for the format).
"""

from .estate import Estate, EstateError, load_estate
from .server import Sandbox, generate_app_key_pair

__all__ = ["Sandbox", "load_estate", "Estate", "EstateError", "generate_app_key_pair"]

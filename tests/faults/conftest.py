"""pytest entry point for tests/faults: the fixtures live in faultlib.py (a
module name of its own, so this suite and tests/e2e can share a session)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from faultlib import fault_broker, topic_suffix, verify  # noqa: E402,F401  (fixtures)

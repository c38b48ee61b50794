"""Where things are, for the tests in every folder: the repository, the sources, the helpers."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SRC = ROOT / "src"
EXAMPLES = ROOT / "examples"
PROCS = TESTS / "_procs"
APPS = TESTS / "_apps"

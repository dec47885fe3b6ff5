"""Test-wide settings: under CI, hypothesis runs a fixed set of examples (no flaky runs);
locally it keeps exploring new ones."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

"""Test-wide settings: under CI, hypothesis runs a fixed set of examples (no flaky runs);
locally it keeps exploring new ones. Neither has a deadline: an example may be the first to
load numba's compiled loops (~0.5 s, once per process), and speed is the benchmarks' business."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

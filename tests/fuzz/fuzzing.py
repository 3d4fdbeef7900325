"""What the fuzz suite's properties share: their hypothesis settings.

A normal test run (CI) runs each property with its own number of examples, derandomized (the
same examples every run: CI is repeatable) and without hypothesis's database. `./ulnet test
--fuzz` runs only this suite, each property with --fuzz-scale (default 50) times as many
examples, random, keeping failing examples in .hypothesis/ (which git ignores), and prints each
property's examples and time (tests/conftest.py).
"""

import os

from hypothesis import HealthCheck, Phase, settings

SCALE = int(os.environ.get("ULNET_FUZZ_SCALE", "1"))


def fuzz(examples, shrink=True):
    """The settings of a property that runs `examples` examples in a normal run; shrink=False
    for one whose examples are slow (its failure names the whole failing example)."""
    options = {"max_examples": examples * SCALE, "deadline": None, "derandomize": SCALE == 1,
               "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
    if not shrink:
        options["phases"] = [Phase.explicit, Phase.reuse, Phase.generate]
    if SCALE == 1:
        options["database"] = None
    return settings(**options)

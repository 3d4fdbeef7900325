"""Fuzz: the upload job's oldest-first walk of its spool folder (core/spooldir.py oldest).

Property: for any folder (any names a file system takes, times shared by many), any batch
length and any names to skip, walking it batch after batch, each walk starting after the last
name of the one before, gives every entry once in (modification time, name) order, hidden
names, sent/, bad/ and the skipped names left out, in as many walks as the batches need; and
MicroPython (a board's walk) gives exactly what CPython does.
"""

import json
import os
import shutil

from fuzzing import fuzz
from hypothesis import given
from hypothesis import strategies as st

import upy
from ulnet.spooldir import oldest

BASE = 1700000000
NAMES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1, max_size=10)
FOLDER = st.tuples(
    st.dictionaries(NAMES.filter(lambda n: n not in (".", "..")), st.integers(0, 4), min_size=0, max_size=30),
    st.integers(1, 12),  # the batch
    st.integers(0, 3))  # how many names to skip

# a walk batch after batch, each starting after the last name of the one before: one source for
# both runtimes (defined here from it, and sent to MicroPython)
WALK_SOURCE = """
def walk(folder, limit, skip):
    got, after = [], None
    while True:
        names, last, more = oldest(folder, after, limit, skip)
        got.append(names)
        if not more:
            break
        after = (last, names[-1])
    return got
"""
_namespace = {"oldest": oldest}
exec(WALK_SOURCE, _namespace)
walk = _namespace["walk"]

WALK = """
import json
from ulnet.spooldir import oldest
""" + WALK_SOURCE + """
with open(%r, encoding="utf-8") as f:  # a file: MicroPython's json takes no surrogate escapes
    cases = json.load(f)
for folder, limit, skip in cases:
    print(json.dumps(walk(folder, limit, skip)))
"""


@fuzz(10)
@given(st.lists(FOLDER, min_size=1, max_size=4))
def test_walks_give_every_entry_once_oldest_first_on_both_runtimes(tmp_path_factory, folders):
    base = str(tmp_path_factory.mktemp("walk"))
    try:
        cases, expected = [], []
        for i, (times, limit, n_skip) in enumerate(folders):
            folder = os.path.join(base, str(i))
            os.mkdir(folder)
            for name, at in times.items():
                with open(os.path.join(folder, name), "w"):
                    pass
                os.utime(os.path.join(folder, name), (BASE + at, BASE + at))
            skip = sorted(times)[:n_skip]
            listed = [n for n in times if n[0] != "." and n not in ("sent", "bad") and n not in skip]
            expected.append(sorted(listed, key=lambda n: (times[n], n)))
            cases.append([folder, limit, skip])
        here = [walk(*case) for case in cases]
        for got, want, (_, limit, _) in zip(here, expected, cases):
            assert sum(got, []) == want
            assert all(len(names) <= limit for names in got)
            assert len(got) == max(1, -(-len(want) // limit))  # the walks the batches need
        with open(os.path.join(base, "cases.json"), "w", encoding="utf-8") as f:
            json.dump(cases, f, ensure_ascii=False)
        done = upy.run(WALK % os.path.join(base, "cases.json"), heap="256K")
        assert done.returncode == 0, done.stderr
        assert [json.loads(line) for line in done.stdout.split("\n")[:-1]] == here  # (not at NEL)
    finally:
        shutil.rmtree(base)

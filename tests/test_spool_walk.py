"""The upload job's oldest-first walk of its spool folder (ulnet.spooldir.oldest, Spool._load):
every scan handed out once, oldest first (modification time, then name), scans that arrive
during a pass included; and a board with heap to spare walks a long spool a few times a pass,
not once every 4 scans (each walk lists and stats every entry: a pass over N scans cost about
N * N / 4 stats on a board before)."""

import os
import random

import pytest

import upy
from test_spool import DEVICE, assert_delivered, make_scans, pyftpd, run_job, write_config  # noqa: F401
from ulnet.spooldir import oldest

BASE = 1700000000  # the scans' modification times, in the past: a scan written now is newer


def shuffle_times(folder, names, seed):
    """Give the scans modification times in a random order, some shared (the name decides
    then); returns {name: time}."""
    rng = random.Random(seed)
    times = {name: BASE + rng.randrange(len(names) // 2) for name in names}
    for name, at in times.items():
        os.utime(os.path.join(folder, name), (at, at))
    return times


def expected_order(folder):
    """The names under folder/sent, by (modification time, name): the order the job must
    hand the scans out in (a move into sent/ keeps the time)."""
    sent = os.path.join(folder, "sent")
    return sorted(os.listdir(sent), key=lambda name: (int(os.stat(os.path.join(sent, name)).st_mtime), name))


@pytest.mark.parametrize("limit", [1, 3, 50, 1000])
def test_walks_of_any_batch_give_every_name_once_oldest_first(tmp_path, limit):
    folder = str(tmp_path)
    names = ["s%03d" % i for i in range(100)] + [".hidden", "sent", "bad"]
    for name in names:
        open(os.path.join(folder, name), "w").close()
    times = shuffle_times(folder, names[:100], limit)
    got, after, walks = [], None, 0
    while True:
        batch, last, more = oldest(folder, after, limit, ["s007"])
        walks += 1
        got += batch
        assert len(batch) <= limit
        if not more:
            break
        after = (last, batch[-1])
    assert got == sorted((n for n in names[:100] if n != "s007"), key=lambda n: (times[n], n))
    assert walks == -(-99 // limit)  # 99 names, limit a walk


def test_scans_arriving_during_a_pass_of_small_walks_go_once_after_the_older_ones(pyftpd, tmp_path):
    """A walk of 7 names at a time (a board with little heap), 60 scans; 10 more arrive after
    the 20th is sent, newer than all of them."""
    spool = str(tmp_path / "spool")
    scans = make_scans(spool, [100] * 60)
    shuffle_times(spool, list(scans), 1)
    late = {"late%02d.csv" % i: b"late %d\n" % i for i in range(10)}

    def hook(job):
        def status(text):
            job.lines.append(text)
            if text.startswith("sent ") and sum(line.startswith("sent ") for line in job.lines) == 20:
                for name, data in late.items():
                    with open(os.path.join(spool, "." + name), "wb") as f:
                        f.write(data)
                    os.rename(os.path.join(spool, "." + name), os.path.join(spool, name))
        job.on_status = status

    job = run_job(pyftpd.url, spool, keep=True, hook=hook, walk_batch=7, sessions=2)
    assert job.status.startswith("done: 70 sent"), job.lines[-3:]
    assert_delivered(pyftpd.home, dict(scans, **late))
    handed = [line.split(" ")[1] for line in job.lines if line.startswith("uploading ")]
    assert handed == expected_order(spool)


WALKED = """
import os
import ulnet.spool, ulnet.spooldir as sd
real = sd.oldest
def oldest(folder, after, limit, skip):
    print("walk", limit)  # printed, not kept: the heap is the job's
    return real(folder, after, limit, skip)
sd.oldest = oldest
sent = [0]
def status(text):
    if text.startswith("uploading "):
        print(text)
    elif text.startswith("sent "):
        sent[0] += 1
        if sent[0] == %(arrive)d:  # scans arriving mid-pass, complete before they show
            for i in range(%(late)d):
                with open("%(spool)s/.late", "w") as f:
                    f.write("late %%d\\n" %% i)
                os.rename("%(spool)s/.late", "%(spool)s/late%%02d.csv" %% i)
job = ulnet.spool.run_from_config("%(config)s", status)
print(job.status)
"""


def test_a_pass_over_400_scans_on_a_board_sized_heap_walks_the_folder_a_few_times(pyftpd, tmp_path):
    """The job under MicroPython with 192 KB of heap (ulnet compiled from .py into it: about
    100 KB are free at a walk), two sessions: 400 scans, 20 more arriving mid-pass. Each walk
    of the folder lists and stats every entry; with 4 names a walk it took 100 walks (40,000
    stats) for the 400."""
    spool = str(tmp_path / "spool")
    scans = make_scans(spool, [30] * 400)
    shuffle_times(spool, list(scans), 2)
    config = str(tmp_path / "ulnet.json")
    write_config(config, url=pyftpd.url, spool=spool, device_id=DEVICE, keep=True, deadline_s=120)
    code = WALKED % {"spool": spool, "config": config, "arrive": 150, "late": 20}
    done = upy.run(code, heap="192K", timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    status = lines[-1]
    walks = [int(line[5:]) for line in lines if line.startswith("walk ")]
    handed = [line.split(" ")[1] for line in lines if line.startswith("uploading ")]
    assert status.startswith("done: 420 sent"), status
    late = {"late%02d.csv" % i: b"late %d\n" % i for i in range(20)}
    assert_delivered(pyftpd.home, dict(scans, **late))
    assert handed == expected_order(spool)  # each once, oldest first, the late ones last
    # a pass over the 400 in one walk or two, then the late 20, then a pass finding none left
    assert len(walks) <= 4 and min(walks) >= 200, walks


CUT = """
import gc
from ulnet.spooldir import oldest
cut = []
try:  # the heap cut into 1 KB pieces, every other one free: no block longer than 1 KB
    while True:
        cut.append(bytearray(1024))
except MemoryError:
    pass
for i in range(0, len(cut), 2):
    cut[i] = None
gc.collect()
after = None
while True:
    names, last, more = oldest(%r, after, 1024, [])
    print("walk", len(names))
    for name in names:
        print(name)
    if not more:
        break
    after = (last, names[-1])
"""


def test_a_walk_on_a_heap_without_a_long_block_holds_fewer_names_and_loses_none(tmp_path):
    """The walk's lists are made at full length at once and halved until the heap has a block
    that long: lists grown by doubling raised MemoryError here (a 1024-name walk needs 8 KB in
    one piece on a 64-bit board), and the job then failed every pass."""
    folder = str(tmp_path)
    names = ["scan%03d.csv" % i for i in range(300)]
    for name in names:
        open(os.path.join(folder, name), "w").close()
    times = shuffle_times(folder, names, 3)
    done = upy.run(CUT % folder, heap="64K", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.split()
    walks = [int(lines[i + 1]) for i, word in enumerate(lines) if word == "walk"]
    assert [word for word in lines if word.startswith("scan")] == sorted(names, key=lambda n: (times[n], n))
    assert len(walks) > 1 and 0 < max(walks) < 300, walks  # fewer names a walk, every one given

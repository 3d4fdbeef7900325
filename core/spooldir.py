"""The spool folder of the upload job (ulnet.spool): its scans oldest first, the journal of the
scans whose bytes are on the server, and the scans set aside.

Layout (on the device's flash, or any folder on a host):
    NAME             a scan waiting to go (any bytes). A scanner writes `.NAME` and renames it
                     when complete: names starting with "." are never touched.
    sent/NAME        uploaded and confirmed, when the job keeps scans (else they are deleted)
    bad/NAME         set aside, never retried; bad/NAME.why holds the reason (also when NAME
                     vanished)
    .journal         one line "SIZE NAME" per scan whose own bytes are in its .part on the
                     server (written to .journal.tmp, then renamed over it)

Rules: the journal is a hint, never trusted: a line that does not name a plain scan of the
folder with a size in digits (torn, "../x", a NUL) is ignored, as is a journal that cannot be
read; writing it may fail (flash full) and that is ignored too. Scans go oldest first (by
modification time, then name); a walk holds at most `limit` names at once, so a board with a
long spool never holds a list of it (the job sizes `limit` from the heap it has free). Runs
unchanged on MicroPython (os.ilistdir, no os.path, errno compared by name).
"""

import errno
import os

from ulnet.errors import errno_of, errno_text

JOURNAL = ".journal"
SENT = "sent"
BAD = "bad"
# os.stat()[0] file type bits: the same on CPython and every MicroPython port
S_IFMT = 0xF000
S_IFREG = 0x8000
# the most journal read: a line per scan in flight and a few more is far less
JOURNAL_MAX = 4096


def entries(folder):
    """The folder's entries, tuples with the name first: os.ilistdir streams them on MicroPython
    (a board cannot hold a long list); CPython has none, zip() makes its names 1-tuples."""
    return os.ilistdir(folder) if hasattr(os, "ilistdir") else zip(os.listdir(folder))


def size(path):
    """The size of path, -1 when it cannot be stat'ed."""
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def mkdir(path):
    try:
        os.mkdir(path)
    except OSError as exc:
        if errno_of(exc) != errno.EEXIST:
            raise


def replace(src, dst):
    """Rename src onto dst, replacing it: the unix port and littlefs do that, FAT refuses."""
    try:
        os.rename(src, dst)
    except OSError as exc:
        if errno_of(exc) != errno.EEXIST:
            raise
        os.remove(dst)
        os.rename(src, dst)


def is_scan(name):
    """True for the name of a scan: a plain name in the spool folder, not hidden, not sent/ or
    bad/, without a character FTP cannot carry (NUL also makes os.stat raise ValueError)."""
    return (name != "" and name[0] != "." and name != SENT and name != BAD and "/" not in name
            and "\r" not in name and "\n" not in name and "\0" not in name)


def pending(folder):
    """(files, bytes) of what waits in the spool folder."""
    files = total = 0
    base = folder.rstrip("/") + "/"
    for entry in entries(folder):
        name = entry[0]
        if name[0] != "." and name != SENT and name != BAD:
            files += 1
            total += max(0, size(base + name))
    return files, total


def check(path, name):
    """The size of scan `name` at path, or why it is no scan (str): it must be a regular file
    with a name FTP can carry, and readable (what the put will do)."""
    try:
        st = os.stat(path)
        if not is_scan(name):  # a listed name has no "/": the rest is CR, LF or NUL
            return "CR, LF or NUL in its name"
        if st[0] & S_IFMT != S_IFREG:
            return "not a regular file"
        open(path, "rb").close()
        return st[6]
    except ValueError:  # a NUL in the name (CPython)
        return "CR, LF or NUL in its name"
    except OSError as exc:
        return "vanished from the spool" if errno_of(exc) == errno.ENOENT else "unreadable: " + errno_text(exc)


def oldest(folder, after, limit, skip):
    """The next entries to look at, oldest first: (names, last, more), the names of at most
    `limit` entries that come after `after`, (time, name) of the last one looked at (None: from
    the first); last: the modification time of the last name; more: the walk left some out for
    the limit. Hidden names, sent/, bad/ and the names in `skip` are left out; entries that are
    no scans are listed too (the job sets them aside); one that cannot be stat'ed counts as the
    oldest. A pass over N entries walks the folder about N / limit + 1 times, each listing and
    stat'ing every entry. Raises OSError when the folder cannot be read.
    Nothing is held per entry but its name and time, in two lists made `limit` long at once
    (halved while a board's heap has no block that long, down to one name: a list that grew
    by doubling needed ever longer blocks), each kept one inserted in order by bisection."""
    base = folder.rstrip("/") + "/"
    while True:
        try:
            times = names = None
            times, names = [0] * limit, [""] * limit
            break
        except MemoryError:
            if limit == 1:
                raise
            limit //= 2
    n = 0  # names held: names[:n]; the rest are placeholders
    more = False
    for entry in entries(folder):
        name = entry[0]
        if name[0] == "." or name == SENT or name == BAD or name in skip:
            continue
        try:
            at = os.stat(base + name)[8]
        except (OSError, ValueError):  # vanished, a dangling link, a NUL in the name
            at = 0
        if after is not None and (at < after[0] or at == after[0] and name <= after[1]):
            continue
        # where it goes among the names held (by (time, name)), by bisection; at once after
        # them when it is the newest (a folder listed in the scans' order)
        lo, hi = 0, n
        if n and not (times[n - 1] > at or times[n - 1] == at and names[n - 1] > name):
            lo = n
        while lo < hi:
            mid = (lo + hi) // 2
            if times[mid] > at or times[mid] == at and names[mid] > name:
                hi = mid
            else:
                lo = mid + 1
        if lo == limit:
            more = True
            continue
        if n == limit:
            more = True  # the newest held drops out
        else:
            n += 1
        # pop, then insert: the lists keep their length, never grow into a new block
        times.pop()
        names.pop()
        times.insert(lo, at)
        names.insert(lo, name)
    while len(names) > n:  # a short batch gives its heap back in place (a copy needs a block)
        names.pop()
    return names, times[n - 1] if n else 0, more


def read_journal(folder):
    """[(size, name)] the journal names, each plain scan name once (see the rules)."""
    try:
        with open(folder.rstrip("/") + "/" + JOURNAL) as f:
            text = f.read(JOURNAL_MAX)
    except (OSError, ValueError):  # none, or not text (UnicodeError is a ValueError)
        return []
    named = []
    for line in text.split("\n"):
        at = line.find(" ")
        n, name = line[:at], line[at + 1:]
        # digits int() takes on both runtimes; "../x" or a NUL would name a file elsewhere
        if at > 0 and n.encode().isdigit() and is_scan(name) and not any(e[1] == name for e in named):
            named.append((int(n), name))
    return named


def write_journal(folder, named):
    """Make the journal list `named`, [(size, name)] (none: no journal); errors are ignored."""
    path = folder.rstrip("/") + "/" + JOURNAL
    try:
        if not named:
            os.remove(path)
            return
        with open(path + ".tmp", "w") as f:
            for n, name in named:
                f.write("%d %s\n" % (n, name))
        replace(path + ".tmp", path)
    except OSError:
        pass


def set_aside(folder, name, why, suffix):
    """Move entry `name` into bad/ with bad/NAME.why saying why (the reason first: a crash
    before the move leaves the entry, to be set aside again); an earlier bad entry of that
    name is kept, the new one gets `suffix`. Raises OSError when it cannot."""
    base = folder.rstrip("/") + "/"
    bad = base + BAD
    target = bad + "/" + name
    mkdir(bad)
    if size(target) >= 0:
        target += suffix
    with open(target + ".why", "w") as f:
        f.write(why + "\n")
    try:
        replace(base + name, target)
    except OSError as exc:
        if errno_of(exc) != errno.ENOENT:  # vanished: the reason alone is the record
            raise

"""Fuzz: the device config (core/spool.py check_config, run_from_config).

Properties: whatever JSON a config holds, check_config returns values the job can run on (each of
its type and range) or raises one ValueError naming the key at fault, never quoting the
password; whatever bytes the config file holds, run_from_config raises ValueError (or OSError
for a missing spool folder), nothing else, and never quotes the password.
"""

import errno
import json

from fuzzing import fuzz
from hypothesis import given
from hypothesis import strategies as st

from ulnet.spool import check_config, run_from_config

SECRET = "TOPSECRETk7"
KEYS = ["url", "device_id", "spool", "keep", "deadline_s"]
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10 ** 40, 10 ** 40)
                    | st.floats(allow_nan=False) | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)
# values that are right, or nearly: the boundaries of each key
GOOD = {
    "url": st.sampled_from(["ftp://u:%s@127.0.0.1:1/in" % SECRET, "ftp://u:%s@h:99999/" % SECRET,
                            "ftp://u:%s@h/a@b" % SECRET, "ftp://%s@h/" % SECRET, "http://u:%s@h/" % SECRET]),
    "device_id": st.sampled_from(["D", "SCN042", ".D", "a/b", "", "a\nb", "sent", "\u00e9"]),
    "spool": st.sampled_from(["/spool", "spool", "/", "//", "", "a\x00b"]),
    "keep": st.sampled_from([True, False, 0, 1, "no", None]),
    "deadline_s": st.sampled_from([600, 0.001, 0.0009, 432000, 432000.5, 0, -1, 1e308, "1", True]),
}
CONFIGS = st.one_of(
    st.fixed_dictionaries({}, optional={key: st.one_of(GOOD[key], JSON) for key in KEYS})
    .flatmap(lambda cfg: st.dictionaries(st.sampled_from(["deadline", "Keep", "x"]), JSON, max_size=1)
             .map(lambda extra: dict(cfg, **extra))),
    JSON)


@fuzz(400)
@given(CONFIGS)
def test_a_config_is_checked_values_or_one_value_error_naming_its_key(cfg):
    try:
        url, folder, device_id, keep, deadline_ms = check_config(cfg)
    except ValueError as exc:
        text = str(exc)
        assert SECRET not in text and "\n" not in text
        assert text == "not a JSON object" or text.startswith(("unknown key ", "missing ")) \
            or text.split(" ")[0].rstrip(":") in KEYS, text
        return
    assert type(url) is str and url.startswith("ftp://")
    assert type(device_id) is str and device_id and device_id[0] != "." and "/" not in device_id
    assert type(folder) is str and folder.strip("/") and "\x00" not in folder
    assert keep is True or keep is False
    assert type(deadline_ms) is int and 1 <= deadline_ms <= 432000 * 1000
    assert set(cfg) <= set(KEYS) and {"url", "device_id"} <= set(cfg)


# a valid config whose spool folder is missing (the job would fail to start, nothing connects),
# cut, mangled and padded into any bytes
BASE = json.dumps({"url": "ftp://u:%s@127.0.0.1:1/in" % SECRET, "device_id": "D",
                   "spool": "/nonexistent-ulnet-spool", "deadline_s": 1}).encode()
MANGLED = st.tuples(st.integers(0, len(BASE)), st.integers(0, len(BASE)), st.binary(max_size=6)).map(
    lambda t: BASE[:min(t[0], t[1])] + t[2] + BASE[max(t[0], t[1]):])
FILES = st.one_of(MANGLED, st.binary(max_size=60), st.just(b"[" * 50000 + b"]" * 50000),
                  st.just(b"{" * 3000), CONFIGS.map(lambda c: json.dumps(c).encode()))


@fuzz(300)
@given(FILES)
def test_any_config_file_gives_a_value_error_or_os_error_and_never_the_password(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "ulnet.json"
    path.write_bytes(data)
    try:
        run_from_config(str(path), on_status=None)
    except ValueError as exc:
        assert str(exc).startswith("config %s: " % path)
        assert SECRET not in str(exc) and exc.__context__ is None or exc.__suppress_context__
    except OSError as exc:  # the config was right (maybe mangled into another one): no such spool
        assert exc.errno in (errno.ENOENT, errno.ENOTDIR) and SECRET not in str(exc)
    else:
        raise AssertionError("a job ran from %r" % data)

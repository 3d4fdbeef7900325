"""Fuzz: the same answers on MicroPython as on CPython.

Batches of generated inputs (reply texts for the parsers, raw server bytes for decode_text and
the FTP machine, URLs, configs) go through the same code on both runtimes (one MicroPython
process per batch): the values, the events and the error texts must match. A board runs this
code; a difference would be a bug only a device shows.
"""

import json

from fuzzing import fuzz
from hypothesis import given
from hypothesis import strategies as st

import upy
from test_fuzz_config import CONFIGS
from test_fuzz_ftp_machine import LONG_LINE, REPLY_LIKE
from test_fuzz_parsers import TEXT

# one case = [kind, argument], plain JSON both ways; every answer is printed as one JSON line
RUN = """
import json
from ulnet.errors import ProtocolError
from ulnet.ftp import listing, parse
from ulnet.ftp.protocol import NEED_DATA, FTPProtocol
from ulnet.ftp.url import parse_url, redact
from ulnet.spool import check_config


def plain(value):
    if isinstance(value, dict):
        return sorted([[k, plain(v)] for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def machine(data):
    proto = FTPProtocol()
    for verb in ("NOOP", "FEAT", "NOOP"):
        proto.send(verb)
    events = []
    try:
        for chunk in (data[:7], data[7:], b""):
            proto.receive_data(chunk)
            while True:
                event = proto.next_event()
                if event is NEED_DATA or not hasattr(event, "code"):
                    break
                events.append([event.code, event.command, event.final, event.lines])
            if event is not NEED_DATA:
                break
    except ProtocolError as exc:
        events.append(["error", type(exc).__name__, exc.code, exc.message])
    return events


def answer(kind, arg):
    try:
        if kind == "parse":
            name, text = arg
            return plain((getattr(parse, name, None) or getattr(listing, name))(text))
        if kind == "decode":
            return parse.decode_text(bytes(arg))
        if kind == "machine":
            return machine(bytes(arg))
        if kind == "url":
            return [plain(parse_url(arg)), redact(arg)]
        return plain(check_config(json.loads(arg)))
    except ProtocolError as exc:  # its text may quote the reply: repr differs between runtimes
        return ["error", type(exc).__name__, exc.code]
    except ValueError as exc:
        return ["error", "ValueError", str(exc)]


for kind, arg in CASES:
    print(json.dumps(answer(kind, arg)))
"""

PARSERS = ["parse_pasv", "parse_epsv", "parse_size", "parse_mdtm", "parse_path", "parse_mlsd_line",
           "parse_nlst_line"]
CASES = st.one_of(
    st.tuples(st.just("parse"), st.tuples(st.sampled_from(PARSERS), TEXT)),
    st.tuples(st.just("decode"), st.binary(max_size=40).map(list)),
    st.tuples(st.just("machine"), st.one_of(REPLY_LIKE, LONG_LINE).map(list)),
    st.tuples(st.just("url"), st.text(st.sampled_from("ftp:/@%[]1a9.\u00e9"), max_size=30).map(lambda t: "ftp://" + t)),
    # configs in standard JSON (CPython also reads Infinity, MicroPython not: an unreadable
    # config on a board)
    st.tuples(st.just("config"), CONFIGS.map(json.dumps).filter(lambda text: "Infinity" not in text)),
).map(list)


@fuzz(3, shrink=False)  # each example is a MicroPython run: the failing case is named instead
@given(st.lists(CASES, min_size=60, max_size=60))
def test_micropython_answers_as_cpython_does(cases):
    # the cases as a literal of the script, in UTF-8 (a JSON "\ud800\udc00" is two characters
    # in a Python literal, one in JSON)
    done = upy.run("CASES = %s\n%s" % (json.dumps(cases, ensure_ascii=False), RUN), heap="4M", timeout=60)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    here = {}
    exec(compile(RUN.split("\nfor kind, arg in CASES:")[0], "run", "exec"), here)
    for case, line in zip(cases, done.stdout.splitlines()):
        assert json.loads(line) == json.loads(json.dumps(here["answer"](*case))), case
    assert len(done.stdout.splitlines()) == len(cases)

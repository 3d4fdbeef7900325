"""Telnet option negotiation by the RFC 1143 "Q method": one table, two sides, 256 options.

Rules: every option has two independent states, ours ("us": what we WILL do, asked for by the
peer's DO/DONT) and the peer's ("them": what it WILL do, asked for by our DO/DONT). lNet kept one
set for both and so confused "they echo" with "we echo"; here they are two bytearrays. Each side
moves through `_TABLE` only, which encodes RFC 1143 section 7 completely, so there are no
negotiation loops and no answer to a request that changes nothing: a repeated DO or WILL finds
the option already YES and sends nothing. No I/O and no allocation besides the returned tuple.
"""

# States of one side of one option (RFC 1143 section 7). The RFC's queue bit ("EMPTY" or
# "OPPOSITE") is folded into two extra states, so one byte holds all of it.
NO = 0  # disabled and nothing outstanding
YES = 1  # enabled
WANTNO = 2  # we sent the negative (DONT/WONT) and wait for the peer to acknowledge it
WANTYES = 3  # we sent the positive (DO/WILL) and wait for the peer's answer
WANTNO_OPPOSITE = 4  # WANTNO, and the caller asked for the option again: re-ask on the answer
WANTYES_OPPOSITE = 5  # WANTYES, and the caller asked the option off again: refuse on the answer

# Inputs to one side's state.
RECV_ON = 0  # the peer sent WILL (their side) or DO (our side) for an option we accept
RECV_ON_REFUSED = 1  # the same for an option we do not support
RECV_OFF = 2  # the peer sent WONT (their side) or DONT (our side)
ASK_ON = 3  # the caller asks to enable (sends DO or WILL through the Q method)
ASK_OFF = 4  # the caller asks to disable (DONT or WONT)

# What to send: nothing, the positive verb (DO / WILL) or the negative one (DONT / WONT).
SEND_NOTHING = 0
SEND_ON = 1
SEND_OFF = 2

def _to(state, send):
    return state << 2 | send


# One row per state, in state order; one entry per input, in input order: the new state and
# what to send, packed into a byte (a bytes table costs 30 bytes of heap; tuples cost 1.3 KB).
# Comments quote RFC 1143 section 7.
_TABLE = bytes((
    # NO
    _to(YES, SEND_ON),  # RECV_ON: accepted, and answering it is the only way to accept
    _to(NO, SEND_OFF),  # RECV_ON_REFUSED: DONT for WILL, WONT for DO
    _to(NO, SEND_NOTHING),  # RECV_OFF: already off; no answer, or two peers would loop
    _to(WANTYES, SEND_ON),  # ASK_ON
    _to(NO, SEND_NOTHING),  # ASK_OFF: "error: already disabled"
    # YES
    _to(YES, SEND_NOTHING),  # RECV_ON: a repeated WILL/DO is ignored, never answered again
    _to(YES, SEND_NOTHING),  # RECV_ON_REFUSED: likewise (the caller forced it on)
    _to(NO, SEND_OFF),  # RECV_OFF: the peer turns it off; we must acknowledge
    _to(YES, SEND_NOTHING),  # ASK_ON: "error: already enabled"
    _to(WANTNO, SEND_OFF),  # ASK_OFF
    # WANTNO
    _to(NO, SEND_NOTHING),  # RECV_ON: "error: DONT answered by WILL"; its WONT follows
    _to(NO, SEND_NOTHING),  # RECV_ON_REFUSED: likewise
    _to(NO, SEND_NOTHING),  # RECV_OFF: acknowledged
    _to(WANTNO_OPPOSITE, SEND_NOTHING),  # ASK_ON: queued until the answer comes
    _to(WANTNO, SEND_NOTHING),  # ASK_OFF: "error: already negotiating"
    # WANTYES
    _to(YES, SEND_NOTHING),  # RECV_ON: our request accepted
    _to(YES, SEND_NOTHING),  # RECV_ON_REFUSED: accepted too, since we asked for it
    _to(NO, SEND_NOTHING),  # RECV_OFF: our request refused
    _to(WANTYES, SEND_NOTHING),  # ASK_ON: "error: already negotiating"
    _to(WANTYES_OPPOSITE, SEND_NOTHING),  # ASK_OFF: queued until the answer comes
    # WANTNO_OPPOSITE
    _to(YES, SEND_NOTHING),  # RECV_ON: "error: DONT answered by WILL", and wanted on anyway
    _to(YES, SEND_NOTHING),  # RECV_ON_REFUSED: likewise
    _to(WANTYES, SEND_ON),  # RECV_OFF: acknowledged; now ask again as queued
    _to(WANTNO_OPPOSITE, SEND_NOTHING),  # ASK_ON: "error: already queued"
    _to(WANTNO, SEND_NOTHING),  # ASK_OFF: cancel the queued re-enable
    # WANTYES_OPPOSITE
    _to(WANTNO, SEND_OFF),  # RECV_ON: accepted, but the caller changed its mind meanwhile
    _to(WANTNO, SEND_OFF),  # RECV_ON_REFUSED: likewise
    _to(NO, SEND_NOTHING),  # RECV_OFF: refused, which is what the caller wants now
    _to(WANTYES, SEND_NOTHING),  # ASK_ON: cancel the queued disable
    _to(WANTYES_OPPOSITE, SEND_NOTHING),  # ASK_OFF: "error: already queued"
))
_INPUTS = 5  # entries per row
assert len(_TABLE) == 6 * _INPUTS


class Options:
    """The Q-method state of all options, for both sides; `us` and `them` are public."""

    def __init__(self):
        self.us = bytearray(256)  # our side, per option code; all NO
        self.them = bytearray(256)  # the peer's side, per option code; all NO

    def enabled(self, option, remote):
        """True when the option is YES on that side (remote=True: the peer's side)."""
        return (self.them if remote else self.us)[option] == YES

    def step(self, option, remote, event):
        """Apply one input to one side of one option: returns (old state, new state, send)."""
        side = self.them if remote else self.us
        old = side[option]
        entry = _TABLE[old * _INPUTS + event]  # the one lookup; every (state, input) is defined
        side[option] = entry >> 2
        return old, entry >> 2, entry & 3

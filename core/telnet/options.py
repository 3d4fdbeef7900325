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

# {state: (result for RECV_ON, RECV_ON_REFUSED, RECV_OFF, ASK_ON, ASK_OFF)}, each result a
# (new state, what to send) pair; comments quote RFC 1143 section 7.
_TABLE = {
    NO: (
        (YES, SEND_ON),  # WILL/DO accepted: answering it is the only way to accept
        (NO, SEND_OFF),  # refused: DONT for WILL, WONT for DO
        (NO, SEND_NOTHING),  # already off: no answer, or two peers would loop
        (WANTYES, SEND_ON),
        (NO, SEND_NOTHING),  # "error: already disabled"
    ),
    YES: (
        (YES, SEND_NOTHING),  # repeated WILL/DO: "ignore", never answered again
        (YES, SEND_NOTHING),
        (NO, SEND_OFF),  # the peer turns it off: we must acknowledge
        (YES, SEND_NOTHING),  # "error: already enabled"
        (WANTNO, SEND_OFF),
    ),
    WANTNO: (
        (NO, SEND_NOTHING),  # "error: DONT answered by WILL"; the peer's WONT follows
        (NO, SEND_NOTHING),
        (NO, SEND_NOTHING),  # acknowledged
        (WANTNO_OPPOSITE, SEND_NOTHING),  # queue the re-enable until the answer comes
        (WANTNO, SEND_NOTHING),  # "error: already negotiating"
    ),
    WANTNO_OPPOSITE: (
        (YES, SEND_NOTHING),  # "error: DONT answered by WILL", and we wanted it on anyway
        (YES, SEND_NOTHING),
        (WANTYES, SEND_ON),  # acknowledged: now ask for it again as queued
        (WANTNO_OPPOSITE, SEND_NOTHING),  # "error: already queued"
        (WANTNO, SEND_NOTHING),  # cancel the queued re-enable
    ),
    WANTYES: (
        (YES, SEND_NOTHING),  # our request accepted (even for an option we would refuse)
        (YES, SEND_NOTHING),
        (NO, SEND_NOTHING),  # our request refused
        (WANTYES, SEND_NOTHING),  # "error: already negotiating"
        (WANTYES_OPPOSITE, SEND_NOTHING),  # queue the disable until the answer comes
    ),
    WANTYES_OPPOSITE: (
        (WANTNO, SEND_OFF),  # accepted, but the caller changed its mind meanwhile
        (WANTNO, SEND_OFF),
        (NO, SEND_NOTHING),  # refused, which is what the caller wants now
        (WANTYES, SEND_NOTHING),  # cancel the queued disable
        (WANTYES_OPPOSITE, SEND_NOTHING),  # "error: already queued"
    ),
}


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
        new, send = _TABLE[old][event]  # the one lookup; every (state, input) is defined
        side[option] = new
        return old, new, send

"""Telnet: the sans-I/O protocol machine, the event-driven client and the blocking facade.

This module holds only the protocol's numbers, so `from ulnet.telnet import DO, ECHO` costs a
few small ints and loads no machine, client or socket code. Values are from RFC 854 (commands),
RFC 855 (subnegotiation) and the option RFCs named beside each option.
"""

# RFC 854 "TELNET COMMAND STRUCTURE": a command is IAC followed by one of these bytes.
IAC = 255  # interpret as command; IAC IAC is a literal 0xFF data byte
DONT = 254  # ask the peer to stop doing an option (or refuse its WILL)
DO = 253  # ask the peer to do an option (or accept its WILL)
WONT = 252  # refuse to do an option (or stop doing it)
WILL = 251  # offer to do an option (or accept its DO)
SB = 250  # subnegotiation begins: IAC SB option payload IAC SE (RFC 855)
GA = 249  # go ahead (half-duplex turn; meaningless once SUPPRESS-GO-AHEAD is on)
EL = 248  # erase line
EC = 247  # erase character
AYT = 246  # are you there
AO = 245  # abort output
IP = 244  # interrupt process
BRK = 243  # break
DM = 242  # data mark, the data-stream part of a Synch
NOP = 241  # no operation (keepalive)
SE = 240  # subnegotiation end
EOR = 239  # end of record (RFC 885)
ABORT = 238  # abort process (RFC 1184)
SUSP = 237  # suspend process (RFC 1184)
XEOF = 236  # end of file (RFC 1184; named XEOF to keep EOF free for the stream's end)

# Option codes ("Assigned Numbers"); the machine supports the first five kinds listed in
# protocol.py and refuses the rest, which are named only so that logs and tests can say them.
BINARY = 0  # RFC 856 transmit binary
ECHO = 1  # RFC 857 echo
SGA = 3  # RFC 858 suppress go ahead
STATUS = 5  # RFC 859
TIMING_MARK = 6  # RFC 860
TTYPE = 24  # RFC 1091 terminal type
EOR_OPTION = 25  # RFC 885 end of record
NAWS = 31  # RFC 1073 negotiate about window size
TSPEED = 32  # RFC 1079 terminal speed
LFLOW = 33  # RFC 1372 remote flow control
LINEMODE = 34  # RFC 1184
XDISPLOC = 35  # RFC 1096 X display location
ENVIRON = 36  # RFC 1408
AUTHENTICATION = 37  # RFC 2941
ENCRYPT = 38  # RFC 2946
NEW_ENVIRON = 39  # RFC 1572
EXOPL = 255  # RFC 861 extended options list

# long spellings of the supported options, for readers who know the RFC titles
SUPPRESS_GO_AHEAD = SGA
TERMINAL_TYPE = TTYPE

"""Telnet: the sans-I/O protocol machine, the event-driven client and the blocking facade."""

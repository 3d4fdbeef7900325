"""Ports: the only place that knows a runtime's selector and socket API.

`ulnet.Eventer(port=NAME)` loads `ulnet.ports.NAME` ("desktop", "upy", "ce"); None picks the
best one for the running runtime. docs/porting.md says what a port provides.
"""

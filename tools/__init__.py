"""Host tools behind the `ulnet` command: emulated board, deploy, hardware-in-loop, upload, demo.

Host CPython only; never deployed to a device.
"""

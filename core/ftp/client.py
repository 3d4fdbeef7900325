"""FTPClient: lNet's TLFTPClient, event-driven: FTPSession plus the less common operations.

Rules: as session.py (every call queues an operation and returns it; each reports exactly
once through on_success or on_failure). Downloads, listings and active mode run code from
extra.py, which loads on first use; a board short of heap uses FTPSession instead.
"""

from ulnet.ftp.ops import FTPError, Op  # noqa: F401 (re-exported)
from ulnet.ftp.session import FTPSession


class FTPClient(FTPSession):
    def get(self, remote, local=None):
        """Download to a local file (written as LOCAL.part, renamed when complete)."""
        return self._extra("get", remote, local or remote.rsplit("/", 1)[-1])

    def list(self, path=""):
        return self._extra("list", path)

    def nlst(self, path=""):
        return self._extra("nlst", path)

    def mlsd(self, path=""):
        """op.result: a list of (facts, name), fact names lower-case."""
        return self._extra("mlsd", path)

    def mdtm(self, name):
        return self._simple("mdtm", "MDTM", name)

    def mkdir(self, name):
        return self._simple("mkdir", "MKD", name)

    def rmdir(self, name):
        return self._simple("rmdir", "RMD", name)

    def cwd(self, path):
        return self._simple("cwd", "CWD", path)

    def pwd(self):
        return self._simple("pwd", "PWD")

    def features(self):
        return self._simple("features", "FEAT")

    def _extra(self, name, *args):
        from ulnet.ftp import extra

        return extra.start(self, name, args)

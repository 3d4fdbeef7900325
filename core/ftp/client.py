"""FTPClient: lNet's TLFTPClient, event-driven: FTPSession plus the less common operations.

Rules: as session.py (every call queues an operation and returns it; each reports exactly
once through on_success or on_failure). Downloads, listings and active mode run code from
extra.py, which loads on first use; a board short of heap uses FTPSession instead.
"""

from ulnet.ftp.ops import FTPError, Op  # noqa: F401 (re-exported)
from ulnet.ftp.session import FTPSession


# reply parsers for the operations below, given the reply's text (listing.py loads only when
# one of them runs)
def _mdtm(text):
    from ulnet.ftp.listing import parse_mdtm

    return parse_mdtm(text)


def _path(text):
    from ulnet.ftp.listing import parse_path

    return parse_path(text)


def _features(text):
    from ulnet.ftp.listing import parse_features

    return parse_features(text.split("\n"))  # Reply.text is its lines joined with LF


class FTPClient(FTPSession):
    listing_limit = 1 << 20  # bytes a listing may take in memory (a board sets it lower)

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
        """op.result: (year, month, day, hour, minute, second), UTC."""
        return self._simple("mdtm", "MDTM", name, None, _mdtm)

    def mkdir(self, name):
        """op.result: the path the server created."""
        return self._simple("mkdir", "MKD", name, None, _path)

    def rmdir(self, name):
        return self._simple("rmdir", "RMD", name)

    def cwd(self, path):
        return self._simple("cwd", "CWD", path)

    def pwd(self):
        return self._simple("pwd", "PWD", None, None, _path)

    def features(self):
        """op.result: {"NAME": "parameters"} from FEAT."""
        return self._simple("features", "FEAT", None, None, _features)

    def _extra(self, name, *args):
        from ulnet.ftp import extra

        return extra.start(self, name, args)

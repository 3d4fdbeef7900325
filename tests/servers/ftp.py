"""Real FTP servers on loopback for the tests: pyftpdlib (own process), vsftpd and pure-ftpd.

Each is a context manager that starts the server, knows its URL and home folder, and always
stops it. Ports are picked by the server (pyftpdlib) or probed free (vsftpd, pure-ftpd).

FTPS (RFC 4217): `tls="explicit"` (AUTH TLS required before the login, every data connection
TLS: the URL is ftpes://) or `tls="implicit"` (TLS from the first byte: ftps://), with `cert`,
a certs.Pair (tests/servers/certs.py) the server presents. pure-ftpd as Debian builds it has no
implicit TLS (a compile-time option that makes every connection implicit), so it takes
explicit only; vsftpd keeps its default require_ssl_reuse=YES: a data connection that does not
resume the control connection's TLS session is refused.
"""

import ftplib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
USER = "scanner"
PASSWORD = "s3cret"
START_DEADLINE_S = 10
SCHEMES = {None: "ftp", "explicit": "ftpes", "implicit": "ftps"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, deadline_s=10):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("no server on 127.0.0.1:%d after %ss" % (port, deadline_s))


class PyFTPD:
    """pyftpdlib in its own process; user scanner / s3cret, home = self.home."""

    name = "pyftpdlib"

    def __init__(self, home=None, quota=0, drop_after=0, user=USER, password=PASSWORD, perm=None,
                 drop_every=False, drop_reply=None, refuse_stor=0, delay_ms=0, tls=None, cert=None,
                 short_stor=0, size_lie=0, faults=()):
        self._tmp = None if home else tempfile.mkdtemp(prefix="ulnet-ftpd-")
        self.home = home or self._tmp
        self.user, self.password = user, password
        self.port = 0
        self.tls = tls
        fd, self._log = tempfile.mkstemp(prefix="ulnet-ftpd-commands-")
        os.close(fd)
        self._args = ["--quota", str(quota), "--drop-after", str(drop_after)] + (["--perm", perm] if perm else [])
        self._args += (["--drop-every"] if drop_every else []) + (["--drop-reply", drop_reply] if drop_reply else [])
        self._args += ["--refuse-stor", str(refuse_stor), "--delay-ms", str(delay_ms), "--commands", self._log]
        self._args += ["--short-stor", str(short_stor), "--size-lie", str(size_lie)]
        self._args += list(faults)  # more of pyftpd_main.py's options, e.g. ["--refuse", "RNTO:x:553 No."]
        if tls:
            self._args += ["--tls", tls, "--certfile", cert.cert, "--keyfile", cert.key]
        self.proc = None

    @property
    def url(self):
        return "%s://%s:%s@127.0.0.1:%d/" % (SCHEMES[self.tls], self.user, self.password, self.port)

    def verbs(self):
        """The verb of every command the server received so far (all its sessions), in order."""
        with open(self._log) as f:
            return f.read().split()

    def start(self):
        cmd = [sys.executable, os.path.join(HERE, "pyftpd_main.py"), "--home", self.home,
               "--user", self.user, "--password", self.password, "--port", str(self.port)] + self._args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], START_DEADLINE_S)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError("pyftpdlib did not start within %d s" % START_DEADLINE_S)
        self.port = int(line.split()[1])
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc.stdout.close()
            self.proc = None

    def restart(self):
        """Stop and start again on the same port (as a server coming back)."""
        self.stop()
        for _ in range(50):
            try:
                return self.start()
            except RuntimeError:
                time.sleep(0.1)
        raise RuntimeError("pyftpdlib did not come back on port %d" % self.port)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        os.remove(self._log)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


class _Foreground:
    """A C server run in the foreground, in a session of its own: it serves self.root
    (read-only), whose subfolder upload/ (self.home) takes the uploads; stop() ends it and
    every per-session process it forked."""

    def __init__(self, prefix, tls=None, cert=None):
        self.tls, self.cert = tls, cert
        self._tmp = tempfile.mkdtemp(prefix=prefix)
        self.root = os.path.join(self._tmp, "root")
        self.home = os.path.join(self.root, "upload")
        os.makedirs(self.home)
        os.chmod(self.root, 0o555)
        self.port = free_port()
        self.proc = None

    def _run(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        try:
            wait_listening(self.port, START_DEADLINE_S)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self):
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)


class VSFTPD(_Foreground):
    """vsftpd in the foreground, anonymous uploads into self.home (its writable subfolder).

    Without root only anonymous uploads into a writable subfolder work, so that is what every
    test uses; `url` points into that folder.
    """

    name = "vsftpd"
    EXE = "/usr/sbin/vsftpd"

    def __init__(self, tls=None, cert=None):
        super().__init__("ulnet-vsftpd-", tls, cert)
        os.makedirs(os.path.join(self._tmp, "empty"))
        if os.geteuid() == 0:
            shutil.chown(self.home, "ftp")
        else:
            os.chmod(self.home, 0o777)

    @property
    def url(self):
        return "%s://anonymous:ulnet@127.0.0.1:%d/upload" % (SCHEMES[self.tls], self.port)

    def _config(self):
        pasv = free_port()
        lines = {
            "listen": "YES", "listen_ipv6": "NO", "listen_address": "127.0.0.1",
            "listen_port": self.port, "background": "NO", "anonymous_enable": "YES",
            "local_enable": "NO", "write_enable": "YES", "anon_upload_enable": "YES",
            "anon_mkdir_write_enable": "YES", "anon_other_write_enable": "YES",
            "anon_umask": "022", "anon_root": self.root, "no_anon_password": "YES",
            "pasv_enable": "YES", "pasv_address": "127.0.0.1", "pasv_min_port": pasv,
            "pasv_max_port": pasv + 200, "secure_chroot_dir": os.path.join(self._tmp, "empty"),
            "xferlog_enable": "NO", "seccomp_sandbox": "NO", "max_clients": 200,
            "run_as_launching_user": "NO" if os.geteuid() == 0 else "YES",
        }
        if self.tls:
            # TLS for the login and every data connection; require_ssl_reuse stays at its
            # default (YES); ssl_ciphers=HIGH as deployments set it (the default, DES-CBC3-SHA
            # alone, leaves a TLS 1.2 client such as MicroPython's mbedtls no cipher)
            lines.update({"ssl_enable": "YES", "allow_anon_ssl": "YES", "force_anon_logins_ssl": "YES",
                          "force_anon_data_ssl": "YES", "rsa_cert_file": self.cert.pem, "ssl_ciphers": "HIGH",
                          "implicit_ssl": "YES" if self.tls == "implicit" else "NO"})
        path = os.path.join(self._tmp, "vsftpd.conf")
        with open(path, "w") as f:
            for key, value in lines.items():
                f.write("%s=%s\n" % (key, value))
        return path

    def start(self):
        return self._run([self.EXE, self._config()])


class PureFTPD(_Foreground):
    """pure-ftpd in the foreground, uploads by a virtual user into self.home (as VSFTPD's layout).

    Needs root (pure-ftpd switches to the user's uid at login). Debian's pure-ftpd and vsftpd
    packages conflict, so the binaries are looked up on PATH, then in /opt/pure-ftpd, where
    `./ulnet test` unpacks the .deb when it is missing (`apt-get download` + `dpkg-deb -x`).
    The user lives in a PureDB file of its own instead of anonymous login, which pure-ftpd
    serves from the system user "ftp"'s home (global state).
    """

    name = "pure-ftpd"
    _PATH = os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin:/opt/pure-ftpd/usr/sbin:/opt/pure-ftpd/usr/bin"
    EXE, PW = shutil.which("pure-ftpd", path=_PATH), shutil.which("pure-pw", path=_PATH)
    UID = GID = 65534  # nobody/nogroup: owns the uploads, not root (pure-ftpd refuses uid 0)
    # SHA-512 crypt of PASSWORD with a fixed salt: pure-pw would hash with argon2, which costs
    # seconds at every login, inside the timed connect-to-226 of the benchmark
    HASH = "$6$ulnet$3EhAl/gu1TNJB86ugw7I4.jQl1MYtA5yfk224IG150QT70z3.lVGjbrEByyMk.iPrzow8tgl/nI8VGgfEZBVz0"

    def __init__(self, tls=None, cert=None):
        if tls == "implicit":
            raise ValueError("pure-ftpd as Debian builds it has no implicit TLS")
        super().__init__("ulnet-pureftpd-", tls, cert)
        os.chown(self.home, self.UID, self.GID)

    @property
    def url(self):
        return "%s://%s:%s@127.0.0.1:%d/upload" % (SCHEMES[self.tls], USER, PASSWORD, self.port)

    def _puredb(self):
        passwd, pdb = os.path.join(self._tmp, "passwd"), os.path.join(self._tmp, "pureftpd.pdb")
        with open(passwd, "w") as f:  # home ending in /./ = chroot there
            f.write("%s:%s:%d:%d::%s/./::::::::::::\n" % (USER, self.HASH, self.UID, self.GID, self.root))
        subprocess.run([self.PW, "mkdb", pdb, "-f", passwd], check=True, timeout=START_DEADLINE_S,
                       stdout=subprocess.DEVNULL)
        return pdb

    def start(self):
        pasv = free_port()
        # -E no anonymous, -A chroot, -H no reverse DNS, -f none: no syslog, -c 200 clients as
        # VSFTPD allows; with TLS, -Y 3: TLS required for the login and every data connection,
        # -2 the certificate (and key) file
        tls = ["-Y", "3", "-2", self.cert.pem] if self.tls else []
        return self._run([self.EXE, "-S", "127.0.0.1,%d" % self.port, "-p", "%d:%d" % (pasv, pasv + 200),
                          "-P", "127.0.0.1", "-l", "puredb:" + self._puredb(), "-E", "-A", "-H", "-f", "none",
                          "-c", "200"] + tls)


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """ftplib's FTP_TLS (a peer client for tests and benchmarks) whose data connections resume
    the control connection's TLS session, as vsftpd demands (ftplib's own do not), and which
    protects the data (PBSZ 0, PROT P) right after the login, as curl does."""

    def login(self, user="", passwd="", acct="", secure=True):
        reply = super().login(user, passwd, acct, secure)  # AUTH TLS first
        self.prot_p()
        return reply

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size

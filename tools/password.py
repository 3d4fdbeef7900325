"""The password of an ftp:// (ftpes://, ftps://) URL given on a host command line, from where curl and lftp users
keep it, so it need not be in the URL (where `ps` shows it to every user of the machine).

Looked up in this order, the first that has one wins:
1. the URL itself (`ftp://user:password@host/dir`), as before;
2. the environment variable ULNET_PASSWORD;
3. a netrc file (`--netrc-file FILE`, else ~/.netrc when it exists): the `machine HOST` entry
   whose login is the URL's user (a URL without a user takes the entry's login too);
4. a prompt, when standard input is a terminal.
A URL without a user, and no netrc entry for its host, is an anonymous login (no password).
The device config keeps the URL form: a device has no terminal and no netrc.

Rules: the password is never printed; errors name the file, the host and the user only.
"""

import getpass
import netrc
import os
import sys
from urllib.parse import quote

from ulnet.ftp.url import parse_url

ENV = "ULNET_PASSWORD"


def complete_url(url, netrc_file=None, prompt=None):
    """The URL with its password filled in (unchanged when it has one, or is anonymous);
    raises ValueError when none can be found. prompt(text) asks on a terminal (default
    getpass when standard input is one)."""
    try:
        host, _, user, password, _, _ = parse_url(url)
    except ValueError as exc:  # names what is wrong, never quoting the password
        raise ValueError("url: %s" % exc) from None
    explicit_user = "@" in url.split("://", 1)[1].split("/", 1)[0]
    if password:
        return url
    password = os.environ.get(ENV)
    if not password:
        entry = _netrc_entry(netrc_file, host)
        login = entry and entry[0]
        if entry and not explicit_user and login:
            user, password = login, entry[2]
        elif entry and explicit_user and login in ("", None, user):
            password = entry[2]
    if not password and not explicit_user:
        return url  # anonymous
    if not password:
        ask = prompt or (getpass.getpass if sys.stdin.isatty() else None)
        if ask is None:
            raise ValueError("no password for %s@%s: put it in %s, in ~/.netrc (or --netrc-file), "
                             "or run on a terminal to be asked" % (user, host, ENV))
        password = ask("password for %s@%s: " % (user, host))
    return _with_credentials(url, user, password)


def _netrc_entry(path, host):
    """(login, account, password) of host's entry, or None; a named file must be readable."""
    if path is None:
        path = os.path.join(os.path.expanduser("~"), ".netrc")
        if not os.path.exists(path):
            return None
    try:
        return netrc.netrc(path).authenticators(host)
    except OSError as exc:
        raise ValueError("cannot read netrc file %s: %s" % (path, exc.strerror)) from None
    except netrc.NetrcParseError as exc:  # its text may quote a token: say only where
        raise ValueError("netrc file %s: cannot parse line %s" % (path, exc.lineno)) from None


def _with_credentials(url, user, password):
    scheme, rest = url.split("://", 1)  # kept: an ftpes:// URL must not become ftp://
    netloc, slash, path = rest.partition("/")
    host = netloc[netloc.rfind("@") + 1:]
    return "%s://%s:%s@%s%s%s" % (scheme, quote(user, safe=""), quote(password, safe=""), host, slash, path)

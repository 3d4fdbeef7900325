"""core/x509.py: the names a certificate is for (what a refused name's message says), against
certificates `cryptography` makes, on CPython and under the real MicroPython; hostile bytes give
None or harmless text, never an exception."""

import datetime
import ipaddress
import random

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ulnet.x509 import names

KEY = ec.generate_private_key(ec.SECP256R1())
NOW = datetime.datetime.now(datetime.timezone.utc)


def der(common_name=None, alt=None, critical=False):
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ulnet tests")]
                        + ([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
                           if common_name else []))
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(KEY.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=1)))
    if alt is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=critical)
    cert = builder.sign(KEY, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER)


IP = lambda text: x509.IPAddress(ipaddress.ip_address(text))  # noqa: E731
CASES = {
    "dns and ip": (der("ignored", [x509.DNSName("ftp.example"), IP("10.0.0.5")]),
                   ["ftp.example", "10.0.0.5"]),
    "ipv6": (der(None, [IP("2001:db8::1")]), ["2001:db8:0:0:0:0:0:1"]),
    "critical san": (der(None, [x509.DNSName("only.example")], critical=True), ["only.example"]),
    "common name only": (der("10.0.0.7"), ["10.0.0.7"]),
    "san without dns or ip": (der("cn.example", [x509.RFC822Name("a@b.example")]),
                              ["cn.example"]),
    "no name": (der(None), None),
    "many": (der(None, [x509.DNSName("n%d.example" % i) for i in range(300)]),
             ["n0.example", "n1.example", "n2.example", "n3.example", "..."]),
    "control characters": (der("evil\r\n230 logged in\x1b[2J"),
                           ["evil??230 logged in?[2J"]),
    "long": (der(None, [x509.DNSName("a" * 63 + "." + "b" * 63 + ".example")]),
             ["a" * 63 + "."]),
    "empty": (b"", None),
    "truncated": (der(None, [x509.DNSName("cut.example")])[:200], None),
    "not der": (b"-----BEGIN CERTIFICATE-----\n", None),
    "random": (bytes(range(256)) * 4, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_names(case):
    data, want = CASES[case]
    assert names(data) == want


def test_names_are_the_same_under_micropython(micropython, tmp_path):
    for i, case in enumerate(sorted(CASES)):
        (tmp_path / ("%02d.der" % i)).write_bytes(CASES[case][0])
    code = ("import os\nfrom ulnet.x509 import names\n"
            "for f in sorted(os.listdir(%r)):\n"
            "    print(names(open(%r + '/' + f, 'rb').read()))\n") % (str(tmp_path), str(tmp_path))
    out = micropython(code).splitlines()
    assert out == [str(CASES[case][1]) for case in sorted(CASES)]


def test_fuzzed_certificates_never_raise():
    base = der("fuzz.example", [x509.DNSName("fuzz.example"), IP("10.1.2.3")])
    rng = random.Random(11)
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[:rng.randrange(len(data) + 1)]
        found = names(bytes(data))
        assert found is None or all(isinstance(n, str) and all(" " <= c < "\x7f" for c in n)
                                    for n in found)

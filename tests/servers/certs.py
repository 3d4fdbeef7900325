"""Test certificates, made at run time with `cryptography`: a CA and server certificates, for
the TLS and FTPS tests and benchmarks. Nothing is checked in, so nothing expires in the tree.

    certs = Certs(folder)          # writes the files once; cheap to make (EC P-256 keys)
    certs.ca                       # the CA certificate (PEM), what a client's cafile names
    certs.ca_der                   # the same in DER, as a board may keep it on flash
    certs["good"].pem              # certificate + key in one file (pure-ftpd, vsftpd)
    certs["good"].cert, .key       # the two apart (pyftpdlib, ssl.SSLContext.load_cert_chain)
    certs["good"].fingerprint      # SHA-256 of the certificate (DER), lower-case hex

Server certificates ("kinds"):
    good      signed by the CA, for IP:127.0.0.1 and DNS:localhost, valid now
    other     signed by the CA, valid now, but for DNS:other.example only (a name mismatch)
    localhost signed by the CA, valid now, for DNS:localhost only (not for 127.0.0.1)
    expired   signed by the CA, for 127.0.0.1 and localhost, expired a day ago
    unknown   for 127.0.0.1 and localhost, valid now, signed by a CA no client trusts

EC P-256 keys: fast to make, and the handshake a board can afford (an RSA-2048 handshake costs
mbedtls several times the heap and the time).
"""

import datetime
import hashlib
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KINDS = ("good", "other", "localhost", "expired", "unknown")
DAY = datetime.timedelta(days=1)


class Pair:
    """One server certificate's files: `cert`, `key`, `pem` (both) and its `fingerprint`."""

    def __init__(self, folder, kind, cert, key):
        self.kind = kind
        self.cert, self.key, self.pem = (os.path.join(folder, kind + ext) for ext in (".crt", ".key", ".pem"))
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        _write(self.cert, cert_pem)
        _write(self.key, key_pem)
        _write(self.pem, cert_pem + key_pem)
        self.fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class Certs:
    """The CA and one Pair per kind, written into `folder` (made when missing)."""

    def __init__(self, folder):
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key, ca_cert = _ca("ulnet test CA", now)
        rogue_key, rogue_cert = _ca("ulnet rogue CA", now)
        self.ca = os.path.join(folder, "ca.pem")
        self.ca_der = os.path.join(folder, "ca.der")
        _write(self.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
        _write(self.ca_der, ca_cert.public_bytes(serialization.Encoding.DER))
        local = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        plans = {
            "good": (local, now - DAY, now + 30 * DAY, ca_key, ca_cert),
            "other": ([x509.DNSName("other.example")], now - DAY, now + 30 * DAY, ca_key, ca_cert),
            "localhost": ([x509.DNSName("localhost")], now - DAY, now + 30 * DAY, ca_key, ca_cert),
            "expired": (local, now - 30 * DAY, now - DAY, ca_key, ca_cert),
            "unknown": (local, now - DAY, now + 30 * DAY, rogue_key, rogue_cert),
        }
        self._pairs = {}
        for kind, (names, start, end, issuer_key, issuer) in plans.items():
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _signed(key, names, start, end, issuer_key, issuer)
            self._pairs[kind] = Pair(folder, kind, cert, key)

    def __getitem__(self, kind):
        return self._pairs[kind]


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _ca(name, now):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + 365 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _signed(key, names, start, end, issuer_key, issuer):
    # the common name repeats the first name: old clients read it, new ones read the SANs
    first = names[0].value
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(first))])
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(issuer_key, hashes.SHA256()))

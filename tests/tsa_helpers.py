"""A time-stamp authority on localhost for the tests: it answers RFC 3161 requests (what c2pa
sends when `swap convert --tsa-url` names one) with a granted token, signed by its own
certificate, which a local CA issued. Just enough DER to write the token and read the request."""

from __future__ import annotations

import datetime
import hashlib
import http.server
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from synthswap.provenance.manifest import _usage  # the key usages of synthswap's own CA and signer

SHA256 = "2.16.840.1.101.3.4.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
SIGNED_DATA = "1.2.840.113549.1.7.2"
TST_INFO = "1.2.840.113549.1.9.16.1.4"
CONTENT_TYPE = "1.2.840.113549.1.9.3"
MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
POLICY = "1.3.6.1.4.1.99999.1"  # a private arc: this authority's (test) policy
NAME = "synthswap test TSA"


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | (n.bit_length() + 7) // 8]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + content


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _set(*items: bytes) -> bytes:
    return _tlv(0x31, b"".join(sorted(items)))  # DER orders a SET OF by encoding


def _int(n: int) -> bytes:
    return _tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True))


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(p) for p in dotted.split("."))
    body = bytes([40 * first + second])
    for arc in rest:
        groups = [arc & 0x7F]
        while arc := arc >> 7:
            groups.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(groups))
    return _tlv(0x06, body)


def _read(data: bytes) -> tuple[int, bytes, bytes, bytes]:
    """(tag, the whole element, its content, what follows it) of the first element of `data`."""
    first = data[1]
    start, length = (2, first) if first < 0x80 else (2 + (first & 0x7F), int.from_bytes(data[2:2 + (first & 0x7F)], "big"))
    return data[0], data[:start + length], data[start:start + length], data[start + length:]


class TimeStampAuthority:
    """Answers each request with a token dating its message imprint; keeps the requests."""

    def __init__(self) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key, self.key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

        def certificate(subject: str, issuer: str, key, signing: bool) -> x509.Certificate:
            builder = (x509.CertificateBuilder()
                       .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                       .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                       .add_extension(x509.BasicConstraints(ca=not signing, path_length=None if signing else 0), critical=True)
                       .add_extension(_usage(signing), critical=True)
                       .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
            if signing:  # C2PA checks a TSA certificate's profile: time-stamping only, with its issuer named
                builder = (builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
                           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                          critical=False))
            return builder.sign(ca_key, hashes.SHA256())

        self.ca = certificate(f"{NAME} CA", f"{NAME} CA", ca_key, signing=False)
        self.cert = certificate(NAME, f"{NAME} CA", self.key, signing=True)
        self.requests: list[bytes] = []

    def respond(self, request: bytes) -> bytes:
        """A granted TimeStampResp for a DER TimeStampReq (RFC 3161, section 2.4)."""
        self.requests.append(request)
        _, _, fields, _ = _read(request)
        _, _, _, rest = _read(fields)  # the version
        _, imprint, _, rest = _read(rest)  # the hash to date, copied into the token as it came
        nonce = b""
        while rest:
            tag, element, _, rest = _read(rest)
            nonce = element if tag == 0x02 else nonce
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M%SZ").encode()
        tst_info = _seq(_int(1), _oid(POLICY), imprint, _int(len(self.requests)), _tlv(0x18, when), nonce)
        cert_der = self.cert.public_bytes(serialization.Encoding.DER)
        attributes = [_seq(_oid(CONTENT_TYPE), _set(_oid(TST_INFO))),
                      _seq(_oid(MESSAGE_DIGEST), _set(_tlv(0x04, hashlib.sha256(tst_info).digest()))),
                      _seq(_oid(SIGNING_CERTIFICATE_V2), _set(_seq(_seq(_seq(_tlv(0x04, hashlib.sha256(cert_der).digest()))))))]
        signed = _set(*attributes)  # signed as a SET, stored as [0] IMPLICIT
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        signer_info = _seq(_int(1), _seq(self.cert.issuer.public_bytes(), _int(self.cert.serial_number)),
                           _seq(_oid(SHA256)), _tlv(0xA0, _read(signed)[2]), _seq(_oid(ECDSA_SHA256)),
                           _tlv(0x04, signature))
        signed_data = _seq(_int(3), _set(_seq(_oid(SHA256))), _seq(_oid(TST_INFO), _tlv(0xA0, _tlv(0x04, tst_info))),
                           _tlv(0xA0, cert_der + self.ca.public_bytes(serialization.Encoding.DER)), _set(signer_info))
        return _seq(_seq(_int(0)), _seq(_oid(SIGNED_DATA), _tlv(0xA0, signed_data)))  # status 0: granted


class TsaServer:
    """The authority behind http://127.0.0.1:PORT/tsa, in a thread; `failing=True` answers 503."""

    def __init__(self, failing: bool = False) -> None:
        self.authority = TimeStampAuthority()
        authority = self.authority

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if failing or self.headers.get("Content-Type") != "application/timestamp-query":
                    self.send_response(503)
                    self.end_headers()
                    return
                reply = authority.respond(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsa"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""RFC 3161 timestamps against a real timestamp authority run by `openssl ts`.

The session fixture makes a throwaway CA, a TSA certificate signed by it and
an `openssl ts` configuration, and serves them over HTTP on loopback, so the
whole exchange (query, reply, token, signature check) runs offline.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from rfc3161ng import decode_timestamp_request

from analysis.evidence.timestamp import Timestamp, TimestampError, read_timestamp, request_timestamp

MANIFEST = b'{"files": {"claims.csv": "0f1e..."}}\n'
TSA_SUBJECT = "CN=stemwatch test TSA,O=stemwatch tests"

TSA_EXTENSIONS = """\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
"""

# Two sections: "tsa" grants SHA-256 queries; "strict" accepts SHA-512 only,
# so it rejects ours the way a real TSA rejects an unsupported algorithm.
TS_CONFIG = """\
[ tsa ]
default_tsa = granting

[ granting ]
serial = {folder}/serial
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
other_policies = 1.3.6.1.4.1.99999.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256

[ strict ]
serial = {folder}/serial
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha512
"""


def openssl(*args: str | Path, cwd: Path) -> bytes:
    done = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def make_pki(folder: Path) -> SimpleNamespace:
    """A CA (EC, quick to make), the TSA (RSA), another TSA and an EC TSA."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=stemwatch test CA", "-days", "2",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", cwd=folder)
    (folder / "tsa.ext").write_text(TSA_EXTENSIONS)
    tsas = {"tsa": ["rsa:2048"], "other": ["rsa:2048"], "ec": ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]}
    for serial, (name, newkey) in enumerate(tsas.items(), start=2):
        subject = {"tsa": "/O=stemwatch tests/CN=stemwatch test TSA"}.get(name, f"/CN={name} TSA")
        openssl("req", "-newkey", *newkey, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", subject, cwd=folder)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-set_serial", str(serial), "-days", "1", "-extfile", "tsa.ext",
                "-out", f"{name}.crt", cwd=folder)
    (folder / "serial").write_text("01\n")
    (folder / "ts.cnf").write_text(TS_CONFIG.format(folder=folder))
    return SimpleNamespace(
        folder=folder,
        ca=folder / "ca.crt",
        cert=(folder / "tsa.crt").read_bytes(),
        cert_der=openssl("x509", "-in", "tsa.crt", "-outform", "DER", cwd=folder),
        other_cert=(folder / "other.crt").read_bytes(),
        ec_cert=(folder / "ec.crt").read_bytes(),
        ca_cert=(folder / "ca.crt").read_bytes(),
    )


def reply_with_openssl(pki: SimpleNamespace, query: bytes, section: str) -> bytes:
    query_file, reply_file = pki.folder / "query.tsq", pki.folder / "reply.tsr"
    query_file.write_bytes(query)
    openssl("ts", "-reply", "-queryfile", query_file, "-config", pki.folder / "ts.cnf",
            "-section", section, "-inkey", "tsa.key", "-signer", "tsa.crt", "-chain", "ca.crt",
            "-out", reply_file, cwd=pki.folder)
    return reply_file.read_bytes()


def tsa_handler(pki: SimpleNamespace) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        """/tsa grants, /reject refuses, /error fails; /garbage, /other and /no-nonce misbehave."""

        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/error":
                return self.answer(500, b"internal error", "text/plain")
            if self.path == "/garbage":
                return self.answer(200, b"<html>not a timestamp</html>", "text/html")
            if self.path == "/other":
                # A genuine token, but for a query the client did not send.
                (pki.folder / "other.txt").write_bytes(b"something else")
                query = openssl("ts", "-query", "-data", "other.txt", "-sha256", "-cert", cwd=pki.folder)
            if self.path == "/no-nonce":
                # The client's digest, but the nonce dropped, as a replayed token would be.
                digest = bytes(decode_timestamp_request(query)["messageImprint"]["hashedMessage"])
                query = openssl("ts", "-query", "-digest", digest.hex(), "-sha256", "-no_nonce",
                                "-cert", cwd=pki.folder)
            section = "strict" if self.path == "/reject" else "granting"
            self.answer(200, reply_with_openssl(pki, query, section), "application/timestamp-reply")

        def answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output quiet

    return Handler


@pytest.fixture(scope="session")
def tsa(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("tsa"))
    server = http.server.HTTPServer(("127.0.0.1", 0), tsa_handler(pki))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    pki.base = f"http://127.0.0.1:{server.server_address[1]}"
    pki.url = pki.base + "/tsa"
    yield pki
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="session", autouse=True)
def no_proxy_for_loopback():
    # A proxy configured on the machine must not catch requests to the local TSA.
    with pytest.MonkeyPatch.context() as patch:
        for name in ("NO_PROXY", "no_proxy"):
            patch.setenv(name, "127.0.0.1")
        yield


@pytest.fixture(scope="session")
def token(tsa) -> bytes:
    return request_timestamp(MANIFEST, tsa.url, timeout=10)


@pytest.mark.parametrize("form", ["cert", "cert_der"])
def test_round_trip_with_the_tsa_certificate(tsa, token, form):
    stamp = read_timestamp(token, MANIFEST, tsa_certificate=getattr(tsa, form))
    assert isinstance(stamp, Timestamp)
    assert stamp.tsa == TSA_SUBJECT
    assert stamp.time.tzinfo is not None and stamp.time.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - stamp.time) < timedelta(minutes=1)
    assert stamp.serial >= 1


def test_without_a_certificate_the_claimed_time_and_tsa_are_reported(tsa, token):
    checked = read_timestamp(token, MANIFEST, tsa_certificate=tsa.cert)
    claimed = read_timestamp(token, MANIFEST)
    assert claimed == checked


def test_a_token_without_certificates_names_no_tsa_until_checked(tsa, tmp_path):
    # Made by openssl without -cert (no certReq), so the token carries no certificate.
    (tmp_path / "manifest").write_bytes(MANIFEST)
    query = openssl("ts", "-query", "-data", tmp_path / "manifest", "-sha256", cwd=tmp_path)
    (tmp_path / "reply.tsr").write_bytes(reply_with_openssl(tsa, query, "granting"))
    bare = openssl("ts", "-reply", "-in", tmp_path / "reply.tsr", "-token_out", cwd=tmp_path)
    assert read_timestamp(bare, MANIFEST).tsa == ""
    assert read_timestamp(bare, MANIFEST, tsa_certificate=tsa.cert).tsa == TSA_SUBJECT


def test_each_token_has_its_own_serial(tsa, token):
    second = request_timestamp(MANIFEST, tsa.url, timeout=10)
    assert second != token
    assert read_timestamp(second, MANIFEST).serial != read_timestamp(token, MANIFEST).serial


def test_the_token_is_kept_byte_for_byte(tsa):
    # pyasn1 would reorder the token's certificates on re-encoding; the TSA's
    # own bytes are what a third party should be handed.
    token = request_timestamp(MANIFEST, tsa.url, timeout=10)
    last_reply = tsa.folder / "reply.tsr"
    assert token == openssl("ts", "-reply", "-in", last_reply, "-token_out", cwd=tsa.folder)


def test_openssl_verifies_the_token_as_returned(tsa, token, tmp_path):
    # The bytes kept are the TSA's own, so independent tools accept them.
    (tmp_path / "manifest").write_bytes(MANIFEST)
    (tmp_path / "token.der").write_bytes(token)
    done = subprocess.run(
        ["openssl", "ts", "-verify", "-data", tmp_path / "manifest", "-in", tmp_path / "token.der",
         "-token_in", "-CAfile", tsa.ca, "-untrusted", tsa.folder / "tsa.crt"],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "Verification: OK" in done.stdout


@pytest.mark.parametrize("data", [
    b"",
    MANIFEST[:-1],                              # one byte short
    MANIFEST + b"\n",                           # one byte more
    MANIFEST.replace(b"0f1e", b"0f1f"),         # one byte changed
    hashlib.sha256(MANIFEST).digest(),          # the digest instead of the data
])
def test_other_data_is_not_covered(tsa, token, data):
    with pytest.raises(TimestampError, match="the timestamp does not cover this manifest"):
        read_timestamp(token, data, tsa_certificate=tsa.cert)
    with pytest.raises(TimestampError, match="does not cover"):
        read_timestamp(token, data)


@pytest.mark.parametrize("cert, message", [
    ("other_cert", "signature does not verify against the TSA certificate CN=other TSA"),
    ("ca_cert", "CN=stemwatch test CA is not a timestamping"),
    ("ec_cert", "non-RSA key"),
])
def test_another_certificate_does_not_verify(tsa, token, cert, message):
    with pytest.raises(TimestampError, match=message):
        read_timestamp(token, MANIFEST, tsa_certificate=getattr(tsa, cert))


@pytest.mark.parametrize("certificate", [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_a_malformed_certificate_is_refused(token, certificate):
    with pytest.raises(TimestampError, match="not a PEM or DER X.509 certificate"):
        read_timestamp(token, MANIFEST, tsa_certificate=certificate)


def test_a_token_with_a_forged_time_fails_the_signature(tsa, token):
    # Half an hour later: still inside the certificate's validity, so only
    # the signature can tell.
    genuine = read_timestamp(token, MANIFEST).time
    later = genuine + timedelta(minutes=30)
    at = token.index(genuine.strftime("%Y%m%d%H%M%SZ").encode())
    forged = token[:at] + later.strftime("%Y%m%d%H%M%SZ").encode() + token[at + 15:]
    assert read_timestamp(forged, MANIFEST).time == later  # the claim changes...
    with pytest.raises(TimestampError, match="signature does not verify"):
        read_timestamp(forged, MANIFEST, tsa_certificate=tsa.cert)  # ...the check catches it


def test_a_time_outside_the_certificate_validity_is_refused(tsa, token):
    genuine = read_timestamp(token, MANIFEST).time
    at = token.index(genuine.strftime("%Y%m%d%H%M%SZ").encode())
    forged = token[:at] + b"19990101000000Z" + token[at + 15:]
    with pytest.raises(TimestampError, match="was not valid at the token's time 1999-01-01"):
        read_timestamp(forged, MANIFEST, tsa_certificate=tsa.cert)


@pytest.mark.parametrize("garbled", [b"", b"garbage", b"\x30\x03\x02\x01\x00", "truncated", "trailing"])
def test_a_garbled_token_is_refused(token, garbled):
    garbled = {"truncated": token[:-7], "trailing": token + b"\x00"}.get(garbled, garbled)
    with pytest.raises(TimestampError, match="not an RFC 3161 timestamp token"):
        read_timestamp(garbled, MANIFEST)


def test_nothing_listening_names_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/tsa"
    with pytest.raises(TimestampError, match=f"could not reach the timestamp authority at {url}: Connection refused"):
        request_timestamp(MANIFEST, url, timeout=5)


def test_a_silent_tsa_times_out_naming_the_url():
    # Listening but never accepting: the connection opens, no answer comes.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/tsa"
        with pytest.raises(TimestampError, match=f"at {url} did not answer within 0.3 seconds"):
            request_timestamp(MANIFEST, url, timeout=0.3)


@pytest.mark.parametrize("path, message", [
    ("/error", "answered HTTP 500"),
    ("/garbage", "sent a reply that is not an RFC 3161 response"),
    ("/reject", "refused the request: rejection, Message digest algorithm is not supported., badAlg"),
    ("/other", "timestamped something other than what was sent"),
    ("/no-nonce", "did not echo the request's nonce"),
])
def test_a_misbehaving_tsa_is_reported_with_its_url(tsa, path, message):
    url = tsa.base + path
    with pytest.raises(TimestampError) as caught:
        request_timestamp(MANIFEST, url, timeout=10)
    assert url in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/tsa",
    "file:///etc/passwd",
    "127.0.0.1:8080/tsa",
    "http://",
    "",
])
def test_only_http_urls_are_accepted(url):
    with pytest.raises(TimestampError, match="is not an http:// or https:// timestamp authority URL"):
        request_timestamp(MANIFEST, url)

"""RFC 3161 trusted timestamps for evidence bundles.

A signature shows who vouches for a bundle; a timestamp from a third party
(a timestamp authority, TSA) shows the bundle existed no later than a given
time, which matters when a clinic changes its pages after a complaint.

`request_timestamp` asks a TSA to timestamp the SHA-256 of some bytes (a
bundle's manifest) and returns the token exactly as the TSA sent it, so that
`openssl ts -verify` and other RFC 3161 tools can check it too.
`read_timestamp` checks a token against those bytes and reports its time.

Signature checks rely on rfc3161ng, which verifies RSA (PKCS#1 v1.5)
signatures only; a TSA with an EC key is reported as unsupported. No
certificate chain or revocation is checked: the caller decides which TSA
certificate to trust and passes it in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import requests
import rfc3161ng
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ

HASH_NAME = "sha256"
REPLY_TYPE = "application/timestamp-reply"
# PKIStatus values that come with a token: granted, granted with modifications
# (RFC 3161, 2.4.2).
_GRANTED = (0, 1)
_REFUSED = {2: "rejection", 3: "waiting", 4: "revocation warning", 5: "revocation notification"}


class TimestampError(Exception):
    """A timestamp that could not be had or does not hold, and why."""


@dataclass(frozen=True)
class Timestamp:
    """What a token says: when, by which TSA (certificate subject) and its serial."""

    time: datetime
    tsa: str
    serial: int


def request_timestamp(data: bytes, tsa_url: str, *, timeout: float = 30) -> bytes:
    """Timestamp SHA-256(`data`) at `tsa_url`; return the DER token the TSA sent.

    The query carries a random nonce and asks for the TSA certificate to be
    included (certReq), so the token can be read without fetching it.
    """
    _check_url(tsa_url)
    digest = hashlib.sha256(data).digest()
    nonce = secrets.randbits(64)
    query = rfc3161ng.make_timestamp_request(
        digest=digest, hashname=HASH_NAME, include_tsa_certificate=True, nonce=nonce
    )
    reply = _post(tsa_url, rfc3161ng.encode_timestamp_request(query), timeout)
    token = _token_from_reply(reply, tsa_url)
    _check_reply_token(token, digest, nonce, tsa_url)
    return token


def read_timestamp(token: bytes, data: bytes, *, tsa_certificate: bytes | None = None) -> Timestamp:
    """Check that `token` timestamps `data` and say when and by whom.

    With `tsa_certificate` (PEM or DER) the token's signature is verified
    against it, and the certificate must be a timestamping one valid at the
    token's time. Without it only the message imprint is checked: the time,
    serial and TSA name are then as the token claims, unverified.
    """
    parsed = _parse_token(token)
    info = _tst_info(parsed)
    digest = hashlib.sha256(data).digest()
    if not _imprint_matches(info, digest):
        raise TimestampError("the timestamp does not cover this manifest")
    time = _gen_time(parsed)
    if tsa_certificate is None:
        tsa = _embedded_signer_subject(parsed)
    else:
        certificate = _load_certificate(tsa_certificate)
        _verify_signature(token, digest, certificate, time)
        tsa = certificate.subject.rfc4514_string()
    return Timestamp(time=time, tsa=tsa, serial=int(info["serialNumber"]))


def _check_url(url: str) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise TimestampError(f"{url!r} is not an http:// or https:// timestamp authority URL")


def _post(url: str, query: bytes, timeout: float) -> bytes:
    try:
        response = requests.post(
            url,
            data=query,
            headers={"Content-Type": "application/timestamp-query", "Accept": REPLY_TYPE},
            timeout=timeout,
            allow_redirects=False,  # a redirected POST may turn into a GET
        )
    except requests.Timeout as exc:
        raise TimestampError(
            f"the timestamp authority at {url} did not answer within {timeout:g} seconds"
        ) from exc
    except requests.RequestException as exc:
        raise TimestampError(
            f"could not reach the timestamp authority at {url}: {_network_reason(exc)}"
        ) from exc
    if response.status_code != 200:
        raise TimestampError(
            f"the timestamp authority at {url} answered HTTP {response.status_code} {response.reason}"
        )
    return response.content


def _network_reason(exc: BaseException) -> str:
    """The OS error behind a requests error ("Connection refused"...), else its text."""
    # requests wraps urllib3's error, which wraps the socket's: search the chain.
    pending, seen = [exc], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        pending += [link for link in linked if isinstance(link, BaseException)]
    return str(exc)


def _token_from_reply(reply: bytes, url: str) -> bytes:
    """The token's own bytes from a TimeStampResp, after checking its status."""
    try:
        response = rfc3161ng.decode_timestamp_response(reply)
        status = int(response.status["status"])
        # Decoded again as raw parts: re-encoding the token with pyasn1 would
        # reorder its certificates, and the TSA's bytes are what we keep.
        parts, _ = decoder.decode(reply, asn1Spec=univ.SequenceOf(componentType=univ.Any()))
    except (PyAsn1Error, ValueError) as exc:
        raise TimestampError(
            f"the timestamp authority at {url} sent a reply that is not an RFC 3161 response"
        ) from exc
    if status not in _GRANTED:
        raise TimestampError(
            f"the timestamp authority at {url} refused the request: {_status_text(response, status)}"
        )
    if len(parts) != 2:
        raise TimestampError(f"the timestamp authority at {url} granted the request but sent no token")
    return bytes(parts[1])


def _status_text(response: rfc3161ng.TimeStampResp, status: int) -> str:
    info = response.status
    words = [_REFUSED.get(status, f"status {status}")]
    if info["statusString"].isValue:
        words += [str(text) for text in info["statusString"]]
    if info["failInfo"].isValue:
        words += [name for name, bit in rfc3161ng.PKIFailureInfo.namedValues.items()
                  if bit < len(info["failInfo"]) and info["failInfo"][bit]]
    return ", ".join(words)


def _check_reply_token(token: bytes, digest: bytes, nonce: int, url: str) -> None:
    """A granted token must be for our digest and echo our nonce (RFC 3161, 2.4.2)."""
    try:
        info = _tst_info(_parse_token(token))
    except TimestampError as exc:
        raise TimestampError(f"the timestamp authority at {url} sent a garbled token: {exc}") from exc
    if not _imprint_matches(info, digest):
        raise TimestampError(f"the timestamp authority at {url} timestamped something other than what was sent")
    if not info["nonce"].isValue or int(info["nonce"]) != nonce:
        raise TimestampError(f"the timestamp authority at {url} did not echo the request's nonce")


def _parse_token(token: bytes) -> rfc3161ng.TimeStampToken:
    try:
        parsed, rest = decoder.decode(bytes(token), asn1Spec=rfc3161ng.TimeStampToken())
    except (PyAsn1Error, ValueError, TypeError) as exc:
        raise TimestampError("not an RFC 3161 timestamp token") from exc
    if rest:
        raise TimestampError("not an RFC 3161 timestamp token: extra bytes after it")
    return parsed


def _tst_info(parsed: rfc3161ng.TimeStampToken) -> rfc3161ng.TSTInfo:
    try:
        if parsed["content"]["contentInfo"]["contentType"] != rfc3161ng.id_ct_TSTInfo:
            raise TimestampError("not an RFC 3161 timestamp token: it signs something else")
        return parsed.tst_info
    except (PyAsn1Error, ValueError, KeyError) as exc:
        raise TimestampError("not an RFC 3161 timestamp token: its content is unreadable") from exc


def _gen_time(parsed: rfc3161ng.TimeStampToken) -> datetime:
    try:
        return rfc3161ng.get_timestamp(parsed, naive=False).astimezone(timezone.utc)
    except ValueError as exc:
        raise TimestampError("not an RFC 3161 timestamp token: its time is unreadable") from exc


def _imprint_matches(info: rfc3161ng.TSTInfo, digest: bytes) -> bool:
    imprint = info["messageImprint"]
    return (
        imprint["hashAlgorithm"]["algorithm"] == rfc3161ng.id_sha256
        and bytes(imprint["hashedMessage"]) == digest
    )


def _load_certificate(certificate: bytes) -> x509.Certificate:
    try:
        if b"-----BEGIN" in certificate:
            return x509.load_pem_x509_certificate(certificate)
        return x509.load_der_x509_certificate(certificate)
    except (ValueError, TypeError) as exc:
        raise TimestampError("the TSA certificate is not a PEM or DER X.509 certificate") from exc


def _verify_signature(token: bytes, digest: bytes, certificate: x509.Certificate, time: datetime) -> None:
    subject = certificate.subject.rfc4514_string()
    if not _is_timestamping(certificate):
        raise TimestampError(f"the certificate {subject} is not a timestamping (TSA) certificate")
    if not certificate.not_valid_before_utc <= time <= certificate.not_valid_after_utc:
        raise TimestampError(f"the TSA certificate {subject} was not valid at the token's time {time}")
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise TimestampError(f"the TSA certificate {subject} has a non-RSA key, which cannot be checked here")
    # rfc3161ng reports a failed check with assorted exception types
    # (InvalidSignature, ValueError, PyAsn1Error...): any of them means not verified.
    try:
        rfc3161ng.check_timestamp(
            token,
            certificate=certificate.public_bytes(Encoding.DER),
            digest=digest,
            hashname=HASH_NAME,
        )
    except Exception as exc:
        raise TimestampError(
            f"the timestamp's signature does not verify against the TSA certificate {subject}"
        ) from exc


def _is_timestamping(certificate: x509.Certificate) -> bool:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.TIME_STAMPING in usage


def _embedded_signer_subject(parsed: rfc3161ng.TimeStampToken) -> str:
    """The subject of the included certificate that signed the token, or ""."""
    signed = parsed["content"]
    try:
        serial = int(signed["signerInfos"][0]["issuerAndSerialNumber"]["serialNumber"])
        for choice in signed["certificates"]:
            certificate = x509.load_der_x509_certificate(encoder.encode(choice["certificate"]))
            if certificate.serial_number == serial:
                return certificate.subject.rfc4514_string()
    except (PyAsn1Error, ValueError, KeyError, IndexError):
        pass  # the name is informative only; an unreadable one is left out
    return ""


"""Ed25519 signing keys, signatures and trusted signers for evidence bundles.

A complainant signs a bundle's manifest so that whoever receives it (a
regulator, a lawyer, a colleague) can tell it left the complainant's hands
unchanged. This module holds the key handling and the checks; what gets
signed is the bundle's business.

Keys are named by a fingerprint, ``ed25519:`` followed by the lowercase hex
SHA-256 of the raw 32-byte public key, short enough to read out on a phone
call and independent of how the PEM file happens to be wrapped.

The private key is stored as an unencrypted PKCS8 PEM file, readable by its
owner only (mode 0600, folder 0700): the CLI signs without prompting, the
same trade-off as an SSH key without a passphrase. Anyone who can read the
file can sign as its owner.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

FINGERPRINT_PREFIX = "ed25519:"
SIGNATURE_LENGTH = 64
KEY_INIT_HINT = "run `stemwatch keys init`"

_HEX64 = re.compile(r"[0-9a-f]{64}")
# A comment starts with "#" at the start of a line or after whitespace,
# so "keys/alice#2.pub" stays a path.
_COMMENT = re.compile(r"(^|\s)#.*$")


class SigningError(Exception):
    """A key, signature or trusted-signer list that cannot be used, and why."""


@dataclass(frozen=True)
class SigningKey:
    """A private key with its public half as PEM and its fingerprint."""

    private_key: ed25519.Ed25519PrivateKey = field(repr=False)
    public_pem: bytes
    fingerprint: str


def default_key_path() -> Path:
    """Where the signing key lives: $STEMWATCH_KEY, else the XDG config folder."""
    explicit = os.environ.get("STEMWATCH_KEY")
    if explicit:
        return Path(explicit).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME")
    # The XDG spec says to ignore a relative value.
    base = Path(config) if config and os.path.isabs(config) else Path.home() / ".config"
    return base / "stemwatch" / "signing-key.pem"


def public_path(path: Path) -> Path:
    """The public key file that goes with a private key file: `<path>.pub`."""
    return path.with_name(path.name + ".pub")


def generate_key(path: Path, *, force: bool = False) -> SigningKey:
    """Make a new key, write it to `path` (0600) and `<path>.pub`, return it."""
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not force:
        raise SigningError(
            f"a signing key already exists at {path}; refusing to overwrite it "
            "(signatures made with it could no longer be matched to a key you hold)"
        )
    private_key = ed25519.Ed25519PrivateKey.generate()
    key = _signing_key(private_key)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        _make_private_folder(path.parent)
        # Private key first: it is the one that matters, the .pub can be rebuilt.
        _write_atomically(path, private_pem, 0o600)
        _write_atomically(public_path(path), key.public_pem, 0o644)
    except OSError as exc:
        raise SigningError(f"cannot write signing key to {path}: {exc.strerror or exc}") from exc
    return key


def load_key(path: Path) -> SigningKey:
    """Read a private key written by `generate_key`, with a clear error if unusable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningError(f"no signing key at {path}: {KEY_INIT_HINT}") from None
    except OSError as exc:
        raise SigningError(f"cannot read signing key {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN" not in data:
        raise SigningError(f"{path} is not a PEM file, so not a signing key")
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise SigningError(
            f"{path} holds a public key; the signing key is the private one "
            f"(usually the same name without .pub)"
        )
    try:
        private_key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SigningError(f"{path} is encrypted with a passphrase; stemwatch needs an unencrypted key") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningError(f"{path} is not a readable private key: {exc}") from None
    if not isinstance(private_key, ed25519.Ed25519PrivateKey):
        raise SigningError(f"{path} holds {_key_kind(private_key)} key, not an Ed25519 key")
    return _signing_key(private_key)


def fingerprint_of(public_pem: bytes) -> str:
    """`ed25519:` + hex SHA-256 of the raw public key in a PEM SubjectPublicKeyInfo."""
    return _fingerprint(_load_public(public_pem))


def normalise_fingerprint(text: str) -> str:
    """Accept a fingerprint as people type it; return it as `fingerprint_of` does.

    Spaces and colons are dropped, case is ignored and the `ed25519:` prefix is
    optional, so "ED25519:AB:CD..." and "abcd..." name the same key.
    """
    if not isinstance(text, str):
        raise SigningError(f"a fingerprint must be text, not {type(text).__name__}")
    compact = "".join(text.split()).lower()
    if compact.startswith(FINGERPRINT_PREFIX):
        compact = compact[len(FINGERPRINT_PREFIX):]
    compact = compact.replace(":", "")
    if not _HEX64.fullmatch(compact):
        raise SigningError(
            f"{text.strip()!r} is not a key fingerprint (expected 64 hex characters, "
            f"optionally after 'ed25519:')"
        )
    return FINGERPRINT_PREFIX + compact


def sign(data: bytes, key: SigningKey) -> bytes:
    """The raw 64-byte Ed25519 signature of `data`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SigningError(f"can only sign bytes, not {type(data).__name__}")
    return key.private_key.sign(bytes(data))


def verify_signature(data: bytes, signature: bytes, public_pem: bytes) -> str:
    """Check that `signature` is `public_pem`'s signature of `data`; return its fingerprint.

    This says who signed, not whether to believe them: pass the result to
    `check_signer`.
    """
    for name, value in (("data", data), ("signature", signature)):
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise SigningError(f"the {name} must be bytes, not {type(value).__name__}")
    if len(signature) != SIGNATURE_LENGTH:
        raise SigningError(
            f"malformed signature: {len(signature)} bytes, an Ed25519 signature has {SIGNATURE_LENGTH}"
        )
    public_key = _load_public(public_pem)
    fingerprint = _fingerprint(public_key)
    try:
        public_key.verify(bytes(signature), bytes(data))
    except InvalidSignature:
        raise SigningError(
            f"the signature does not match: the data was changed or not signed by key {fingerprint}"
        ) from None
    return fingerprint


def load_trusted(spec: str) -> frozenset[str]:
    """The fingerprints of trusted signers from one fingerprint or a file listing them.

    The file has one entry a line: a fingerprint, or the path of a `.pub` file
    (relative paths start from the file's folder). `#` starts a comment; blank
    lines are skipped. A `.pub` file itself is also accepted as `spec`.
    """
    try:
        return frozenset({normalise_fingerprint(spec)})
    except SigningError as not_fingerprint:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise SigningError(
                f"{spec!r} is neither a fingerprint nor an existing file of trusted signers"
            ) from not_fingerprint
    text = _read_text(path)
    if "-----BEGIN" in text:
        return frozenset({fingerprint_of(text.encode("ascii", "replace"))})
    trusted = {_trusted_entry(path, number, line) for number, line in _entries(text)}
    if not trusted:
        raise SigningError(f"{path} lists no trusted signers")
    return frozenset(trusted)


def check_signer(fingerprint: str, trusted: frozenset[str]) -> None:
    """Raise unless `fingerprint` is one of `trusted` (as from `load_trusted`)."""
    normal = normalise_fingerprint(fingerprint)
    if normal not in trusted:
        raise SigningError(
            f"signer {normal} is not trusted (not among the {len(trusted)} trusted key(s))"
        )


def _signing_key(private_key: ed25519.Ed25519PrivateKey) -> SigningKey:
    public_key = private_key.public_key()
    public_pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(private_key, public_pem, _fingerprint(public_key))


def _fingerprint(public_key: ed25519.Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return FINGERPRINT_PREFIX + hashlib.sha256(raw).hexdigest()


def _load_public(public_pem: bytes) -> ed25519.Ed25519PublicKey:
    if not isinstance(public_pem, (bytes, bytearray)):
        raise SigningError(f"the public key must be PEM bytes, not {type(public_pem).__name__}")
    try:
        public_key = serialization.load_pem_public_key(bytes(public_pem))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningError(f"not a PEM public key: {exc}") from None
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise SigningError(f"the public key is {_key_kind(public_key)} key, not an Ed25519 key")
    return public_key


def _key_kind(key: object) -> str:
    """"an RSA", "an EC"...: for messages such as "X holds an RSA key"."""
    for kinds, name in _KEY_KINDS:
        if isinstance(key, kinds):
            return name
    return f"a {type(key).__name__}"


_KEY_KINDS = (
    ((rsa.RSAPrivateKey, rsa.RSAPublicKey), "an RSA"),
    ((ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey), "an EC (elliptic curve)"),
    ((dsa.DSAPrivateKey, dsa.DSAPublicKey), "a DSA"),
    ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "an Ed448"),
)


def _make_private_folder(folder: Path) -> None:
    if folder.is_dir():
        return  # an existing folder (~/.config, say) keeps its permissions
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)  # mkdir's mode is filtered by the umask


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write to a temporary file beside `path`, then rename: never half a file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    # The rename is durable only once the folder itself is flushed.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SigningError(f"cannot read trusted signers {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise SigningError(f"{path} is not a text file of trusted signers") from None


def _entries(text: str) -> list[tuple[int, str]]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = _COMMENT.sub("", line).strip()
        if entry:
            entries.append((number, entry))
    return entries


def _trusted_entry(listing: Path, number: int, entry: str) -> str:
    try:
        return normalise_fingerprint(entry)
    except SigningError:
        pass
    key_file = listing.parent / Path(entry).expanduser()
    try:
        return fingerprint_of(key_file.read_bytes())
    except FileNotFoundError:
        reason = f"{entry!r} is neither a fingerprint nor an existing .pub file"
    except OSError as exc:
        reason = f"cannot read {key_file}: {exc.strerror or exc}"
    except SigningError as exc:
        reason = f"{key_file}: {exc}"
    raise SigningError(f"{listing}, line {number}: {reason}")

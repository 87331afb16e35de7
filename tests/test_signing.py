"""Ed25519 signing keys: files, fingerprints, signatures and trusted signers."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from analysis.evidence.signing import (
    SigningError,
    SigningKey,
    check_signer,
    default_key_path,
    fingerprint_of,
    generate_key,
    load_key,
    load_trusted,
    normalise_fingerprint,
    sign,
    verify_signature,
)

MANIFEST = b'{"bundle": "evidence", "files": {"claims.csv": "9f86d081884c7d65"}}\n'
HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
FINGERPRINT = "ed25519:" + HEX


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def pem_private(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem_public(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def key_path(tmp_path) -> Path:
    return tmp_path / "config" / "stemwatch" / "signing-key.pem"


@pytest.fixture
def key(key_path) -> SigningKey:
    return generate_key(key_path)


# Keys on disk

def test_generate_load_sign_verify_round_trip(key, key_path):
    loaded = load_key(key_path)
    assert loaded.fingerprint == key.fingerprint
    assert loaded.public_pem == key.public_pem
    signature = sign(MANIFEST, loaded)
    assert len(signature) == 64
    assert verify_signature(MANIFEST, signature, key.public_pem) == key.fingerprint


def test_fingerprint_is_the_sha256_of_the_raw_public_key(key):
    assert re.fullmatch(r"ed25519:[0-9a-f]{64}", key.fingerprint)
    assert fingerprint_of(key.public_pem) == key.fingerprint
    raw = key.private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                    serialization.PublicFormat.Raw)
    assert key.fingerprint == "ed25519:" + hashlib.sha256(raw).hexdigest()


def test_files_and_modes(key, key_path):
    public = key_path.with_name("signing-key.pem.pub")
    assert mode(key_path) == 0o600
    assert mode(key_path.parent) == 0o700
    assert mode(public) == 0o644
    assert public.read_bytes() == key.public_pem
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    # The atomic writes leave no temporary files behind.
    assert sorted(p.name for p in key_path.parent.iterdir()) == ["signing-key.pem", "signing-key.pem.pub"]


def test_modes_do_not_depend_on_the_umask(tmp_path):
    previous = os.umask(0)
    try:
        path = tmp_path / "open" / "key.pem"
        generate_key(path)
    finally:
        os.umask(previous)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_an_existing_folder_keeps_its_mode(tmp_path):
    tmp_path.chmod(0o755)
    generate_key(tmp_path / "key.pem")
    assert mode(tmp_path) == 0o755


def test_refuses_to_overwrite_without_force(key, key_path):
    before = key_path.read_bytes()
    with pytest.raises(SigningError, match=f"already exists at {re.escape(str(key_path))}"):
        generate_key(key_path)
    assert key_path.read_bytes() == before
    assert load_key(key_path).fingerprint == key.fingerprint


def test_force_replaces_the_key_and_its_public_half(key, key_path):
    replaced = generate_key(key_path, force=True)
    assert replaced.fingerprint != key.fingerprint
    assert load_key(key_path).fingerprint == replaced.fingerprint
    assert fingerprint_of(key_path.with_name(key_path.name + ".pub").read_bytes()) == replaced.fingerprint
    assert mode(key_path) == 0o600


def test_the_key_does_not_show_in_its_repr(key):
    shown = repr(key)
    assert key.fingerprint in shown
    assert "private_key" not in shown


def test_an_unwritable_place_is_a_signing_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SigningError, match=f"cannot write signing key to {re.escape(str(blocker))}"):
        generate_key(blocker / "key.pem")


@pytest.mark.parametrize("content, message", [
    (None, "no signing key at {path}: run `stemwatch keys init`"),
    (b"", "{path} is not a PEM file"),
    (b"\x00\x01binary garbage", "{path} is not a PEM file"),
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "{path} is not a readable private key"),
    ("rsa", "{path} holds an RSA key, not an Ed25519 key"),
    ("ec", "{path} holds an EC (elliptic curve) key, not an Ed25519 key"),
    ("public", "{path} holds a public key"),
    ("encrypted", "{path} is encrypted with a passphrase"),
    ("folder", "cannot read signing key {path}"),
])
def test_load_key_says_what_is_wrong(tmp_path, rsa_key, ec_key, content, message):
    path = tmp_path / "signing-key.pem"
    ed = ed25519.Ed25519PrivateKey.generate()
    made = {
        "rsa": lambda: pem_private(rsa_key),
        "ec": lambda: pem_private(ec_key),
        "public": lambda: pem_public(ed),
        "encrypted": lambda: ed.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase")),
    }
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(made[content]() if isinstance(content, str) else content)
    with pytest.raises(SigningError, match=re.escape(message.format(path=path))):
        load_key(path)


def test_a_key_from_elsewhere_loads_if_it_is_ed25519(tmp_path):
    # A key made by another tool (here: by hand) is as good as a generated one.
    ed = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "imported.pem"
    path.write_bytes(pem_private(ed))
    assert load_key(path).fingerprint == fingerprint_of(pem_public(ed))


@pytest.mark.parametrize("env, expected", [
    ({"STEMWATCH_KEY": "/keys/mine.pem", "XDG_CONFIG_HOME": "/xdg"}, "/keys/mine.pem"),
    ({"XDG_CONFIG_HOME": "/xdg"}, "/xdg/stemwatch/signing-key.pem"),
    ({"STEMWATCH_KEY": "", "XDG_CONFIG_HOME": "/xdg"}, "/xdg/stemwatch/signing-key.pem"),
    ({"XDG_CONFIG_HOME": "relative/config"}, "/home/u/.config/stemwatch/signing-key.pem"),
    ({}, "/home/u/.config/stemwatch/signing-key.pem"),
])
def test_default_key_path(monkeypatch, env, expected):
    monkeypatch.setenv("HOME", "/home/u")
    for name in ("STEMWATCH_KEY", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert default_key_path() == Path(expected)


# Signatures

def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


@pytest.mark.parametrize("tampered", [
    flip(MANIFEST, 0),
    flip(MANIFEST, len(MANIFEST) // 2),
    flip(MANIFEST, len(MANIFEST) - 1),
    MANIFEST + b" ",
    MANIFEST[:-1],
    b"",
])
def test_changed_data_fails(key, tampered):
    signature = sign(MANIFEST, key)
    with pytest.raises(SigningError, match=f"does not match.*{key.fingerprint}"):
        verify_signature(tampered, signature, key.public_pem)


def test_a_changed_signature_fails(key):
    signature = sign(MANIFEST, key)
    with pytest.raises(SigningError, match="does not match"):
        verify_signature(MANIFEST, flip(signature, 10), key.public_pem)


def test_a_signature_by_another_key_fails(key, tmp_path):
    other = generate_key(tmp_path / "other.pem")
    with pytest.raises(SigningError, match="does not match"):
        verify_signature(MANIFEST, sign(MANIFEST, other), key.public_pem)
    assert verify_signature(MANIFEST, sign(MANIFEST, other), other.public_pem) == other.fingerprint


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_a_signature_of_the_wrong_length_is_malformed(key, length):
    with pytest.raises(SigningError, match=f"malformed signature: {length} bytes"):
        verify_signature(MANIFEST, b"\x00" * length, key.public_pem)


@pytest.mark.parametrize("public, message", [
    ("rsa", "the public key is an RSA key, not an Ed25519 key"),
    ("ec", "the public key is an EC (elliptic curve) key"),
    (b"", "not a PEM public key"),
    (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
    ("text", "the public key must be PEM bytes, not str"),
])
def test_a_bad_public_key_is_refused(key, rsa_key, ec_key, public, message):
    public = {"rsa": lambda: pem_public(rsa_key), "ec": lambda: pem_public(ec_key),
              "text": lambda: key.public_pem.decode()}.get(public, lambda: public)()
    with pytest.raises(SigningError, match=re.escape(message)):
        verify_signature(MANIFEST, sign(MANIFEST, key), public)
    with pytest.raises(SigningError, match=re.escape(message)):
        fingerprint_of(public)


def test_only_bytes_are_signed_and_checked(key):
    with pytest.raises(SigningError, match="can only sign bytes, not str"):
        sign(MANIFEST.decode(), key)
    with pytest.raises(SigningError, match="the data must be bytes, not str"):
        verify_signature(MANIFEST.decode(), sign(MANIFEST, key), key.public_pem)


# Fingerprints as people type them

@pytest.mark.parametrize("text", [
    HEX,
    HEX.upper(),
    FINGERPRINT,
    "ED25519:" + HEX.upper(),
    ":".join(HEX[i:i + 2] for i in range(0, 64, 2)),
    "ed25519:" + ":".join(HEX[i:i + 2] for i in range(0, 64, 2)),
    " ".join(HEX[i:i + 4] for i in range(0, 64, 4)),
    f"  {FINGERPRINT}\n",
    "ed25519: " + HEX,
    "ed25519:\t" + HEX[:32] + "\t" + HEX[32:],
])
def test_normalise_fingerprint_accepts(text):
    assert normalise_fingerprint(text) == FINGERPRINT


@pytest.mark.parametrize("text", [
    "",
    "ed25519:",
    HEX[:-1],                        # one short
    HEX + "0",                       # one long
    HEX[:-1] + "g",                  # not hex
    HEX[:32] + "-" + HEX[32:],       # a dash is not a separator
    "sha256:" + HEX,                 # another prefix
    "ed25519:ed25519:" + HEX,        # the prefix twice
    "ed448:" + HEX,
    "ed25519:" + HEX[:-2],
])
def test_normalise_fingerprint_refuses(text):
    with pytest.raises(SigningError, match="is not a key fingerprint"):
        normalise_fingerprint(text)


def test_normalise_fingerprint_refuses_non_text():
    with pytest.raises(SigningError, match="must be text, not bytes"):
        normalise_fingerprint(HEX.encode())


# Trusted signers

@pytest.fixture
def signers(tmp_path) -> dict[str, SigningKey]:
    return {name: generate_key(tmp_path / "keys" / f"{name}.pem") for name in ("alice", "bob", "carol")}


def test_load_trusted_from_one_fingerprint():
    assert load_trusted(":".join(HEX[i:i + 2] for i in range(0, 64, 2)).upper()) == {FINGERPRINT}


def test_load_trusted_from_a_file(tmp_path, signers):
    listing = tmp_path / "trusted.txt"
    listing.write_text(
        "# who may sign our bundles\n"
        "\n"
        f"{signers['alice'].fingerprint}   # alice, read out on the phone\n"
        f"   {signers['bob'].fingerprint.upper().removeprefix('ED25519:')}\n"
        "keys/carol.pem.pub\n"
        f"{tmp_path / 'keys' / 'carol.pem.pub'}\n"  # absolute, same key again
        "    # an indented comment\n"
    )
    assert load_trusted(str(listing)) == {key.fingerprint for key in signers.values()}


def test_load_trusted_from_a_pub_file(signers, tmp_path):
    assert load_trusted(str(tmp_path / "keys" / "bob.pem.pub")) == {signers["bob"].fingerprint}


@pytest.mark.parametrize("lines, line, message", [
    ([FINGERPRINT, "# fine", "", "abc123"], 4, "'abc123' is neither a fingerprint nor an existing .pub file"),
    (["keys/nobody.pem.pub"], 1, "'keys/nobody.pem.pub' is neither a fingerprint"),
    ([FINGERPRINT, "rsa.pub"], 2, "the public key is an RSA key"),
    ([FINGERPRINT, FINGERPRINT[:-1]], 2, "is neither a fingerprint"),
    (["keys"], 1, "cannot read"),
])
def test_a_bad_line_names_the_file_and_line(tmp_path, rsa_key, signers, lines, line, message):
    (tmp_path / "rsa.pub").write_bytes(pem_public(rsa_key))
    listing = tmp_path / "trusted.txt"
    listing.write_text("\n".join(lines) + "\n")
    with pytest.raises(SigningError, match=f"{re.escape(str(listing))}, line {line}: .*{re.escape(message)}"):
        load_trusted(str(listing))


@pytest.mark.parametrize("content, message", [
    ("# nobody yet\n\n", "lists no trusted signers"),
    (b"\xff\xfe\x00binary", "is not a text file of trusted signers"),
])
def test_an_unusable_listing_is_refused(tmp_path, content, message):
    listing = tmp_path / "trusted.txt"
    listing.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(SigningError, match=message):
        load_trusted(str(listing))


def test_neither_a_fingerprint_nor_a_file(tmp_path):
    with pytest.raises(SigningError, match="'ed25519:abc' is neither a fingerprint nor an existing file"):
        load_trusted("ed25519:abc")
    with pytest.raises(SigningError, match="neither a fingerprint nor an existing file"):
        load_trusted(str(tmp_path / "missing.txt"))


def test_check_signer(signers):
    trusted = frozenset({signers["alice"].fingerprint, signers["bob"].fingerprint})
    assert check_signer(signers["alice"].fingerprint, trusted) is None
    assert check_signer(signers["bob"].fingerprint.upper(), trusted) is None  # any typed form
    carol = signers["carol"].fingerprint
    with pytest.raises(SigningError, match=f"signer {carol} is not trusted"):
        check_signer(carol, trusted)
    with pytest.raises(SigningError, match="is not a key fingerprint"):
        check_signer("ed25519:abc", trusted)


def test_signed_by_a_trusted_key_end_to_end(tmp_path, signers):
    listing = tmp_path / "trusted.txt"
    listing.write_text("keys/alice.pem.pub\n")
    trusted = load_trusted(str(listing))
    signature = sign(MANIFEST, load_key(tmp_path / "keys" / "alice.pem"))
    check_signer(verify_signature(MANIFEST, signature, signers["alice"].public_pem), trusted)
    bob_signature = sign(MANIFEST, signers["bob"])
    with pytest.raises(SigningError, match="is not trusted"):
        check_signer(verify_signature(MANIFEST, bob_signature, signers["bob"].public_pem), trusted)

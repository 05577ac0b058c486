"""Member keys on the laptop: Ed25519 (via `cryptography`) in a keystore directory.

Layout: ``<keystore>/<NAME>.key``, one JSON document per key, file mode 0600 in a 0700 directory::

    {"v": 1, "name": "ana", "seed": "<32-byte private seed, hex>", "public": "<32-byte public key, hex>"}

The keystore is ``$PLEXUS_HOME/keys`` (default ``~/.local/share/plexus/keys``) unless a directory is
given explicitly (``--keystore``). A key file readable by group or others is refused, like ssh does.
"""

from __future__ import annotations

import binascii
import json
import os
import re
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from plexwire import msg

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
SUFFIX = ".key"


class KeyStoreError(ValueError):
    """A keystore problem the user can fix (missing key, bad name, unsafe permissions)."""


def home(override: str | os.PathLike | None = None) -> Path:
    """Base directory of the laptop state: $PLEXUS_HOME, else ~/.local/share/plexus."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("PLEXUS_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "plexus"


def keystore_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override).expanduser() if override else home() / "keys"


def check_name(name: str, what: str = "key") -> str:
    """A name safe as a file name (keys, nodes): 1-64 letters, digits, '_', '.', '-', not starting with '.' or '-'."""
    if not _NAME.match(name or ""):
        raise KeyStoreError("bad %s name %r: use 1-64 letters, digits, '_', '.', '-'" % (what, name))
    return name


class Key:
    """One member key. `seed` is the 32-byte Ed25519 private seed."""

    def __init__(self, name: str, seed: bytes):
        self.name = name
        self.seed = bytes(seed)
        self._priv = Ed25519PrivateKey.from_private_bytes(self.seed)
        self.pub = self._priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.kid = msg.key_id(self.pub)

    @property
    def pub_hex(self) -> str:
        return self.pub.hex()

    def sign(self, data: bytes) -> bytes:
        return self._priv.sign(bytes(data))

    def roster_entry(self, contact: str = "") -> dict:
        e = {"name": self.name, "key": self.pub_hex}
        if contact:
            e["contact"] = contact
        return e

    def sign_message(self, group_id: bytes, kind: int, fields: dict, time_s: int) -> bytes:
        """A complete signed inner message of `kind` authored by this key."""
        unsigned = msg.encode_unsigned(kind, fields, self.kid, time_s)
        return msg.finish(unsigned, self.sign(msg.signing_bytes(group_id, unsigned)))

    def __repr__(self) -> str:
        return "Key(%r, kid=%s)" % (self.name, self.kid.hex())


def _path(ks: Path, name: str) -> Path:
    return ks / (check_name(name) + SUFFIX)


def new_key(name: str, keystore: str | os.PathLike | None = None, seed: bytes | None = None) -> Key:
    """Create a key file (0600); refuses to overwrite an existing key."""
    ks = keystore_dir(keystore)
    ks.mkdir(parents=True, exist_ok=True, mode=0o700)
    p = _path(ks, name)
    key = Key(name, seed if seed is not None else os.urandom(32))
    doc = {"v": 1, "name": name, "seed": key.seed.hex(), "public": key.pub_hex}
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyStoreError("key %r already exists in %s" % (name, ks)) from None
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return key


def load_key(name: str, keystore: str | os.PathLike | None = None) -> Key:
    ks = keystore_dir(keystore)
    p = _path(ks, name)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise KeyStoreError("no key named %r in %s (see `plexus keys list`)" % (name, ks)) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError("%s is readable by others: run `chmod 600 %s`" % (p, p))
    try:
        doc = json.loads(p.read_text())
        seed = binascii.unhexlify(doc["seed"])
        if len(seed) != 32:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise KeyStoreError("%s is not a valid plexus key file" % p) from None
    key = Key(name, seed)
    if doc.get("public") and doc["public"] != key.pub_hex:
        raise KeyStoreError("%s: public key does not match the seed" % p)
    return key


def list_keys(keystore: str | os.PathLike | None = None) -> list[Key]:
    ks = keystore_dir(keystore)
    if not ks.is_dir():
        return []
    out = []
    for p in sorted(ks.glob("*" + SUFFIX)):
        out.append(load_key(p.name[: -len(SUFFIX)], ks))
    return out


def valid_pub(pub: bytes) -> bool:
    """Is `pub` a canonical encoding of an Ed25519 point that is not of small order (RFC 8032 s.5.1.3; a
    small-order key verifies signatures it never made)? The node's own strict decoder decides."""
    from plexnode import ed25519 as ed

    if len(pub) != 32:
        return False
    pt = ed._decode(pub)
    if pt is None:
        return False
    x, y = pt
    q = (x, y, 1, x * y % ed._P)
    for _ in range(3):
        q = ed._pdbl(q)
    return not (q[0] % ed._P == 0 and (q[1] - q[2]) % ed._P == 0)  # 8P is the neutral element: small order


def parse_pub_hex(s: str) -> bytes | None:
    """32-byte public key from 64 hex digits, else None."""
    s = s.strip()
    if len(s) != 64:
        return None
    try:
        return binascii.unhexlify(s)
    except (binascii.Error, ValueError):
        return None

"""Encryption at rest: a payload codec that encrypts every Temporal payload (S1.5).

Stepped's arguments, results, step states, lane messages and the Web UI
summary line all travel as Temporal payloads; with this codec on the client
(and so on the worker built from it) Temporal only ever stores ciphertext:

    from stepped_temporal.codec import data_converter

    client = await Client.connect("localhost:7233", data_converter=data_converter())

The key is 32 random bytes, written in base64 (``python -m
stepped_temporal.codec`` prints a new one), read from ``STEPPED_CODEC_KEY``.
Payloads are sealed with AES-256-GCM and carry the id of their key (a hash of
it, never the key), so keys can rotate: put the new key in
``STEPPED_CODEC_KEY`` and the old ones, comma-separated, in
``STEPPED_CODEC_KEYS``; they still decrypt what they encrypted.

Decoding leaves payloads that are not encrypted untouched, so switching
encryption on does not break workflows that are already running. Not
encrypted, by Temporal's design: workflow ids (Stepped's hold actor type, id
and action name, and lane ids hold concurrency keys) and search attributes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from .errors import SteppedError

#: The environment variable holding the key payloads are encrypted with.
KEY_VARIABLE = "STEPPED_CODEC_KEY"
#: The environment variable holding older keys, comma-separated, for decoding only.
OLD_KEYS_VARIABLE = "STEPPED_CODEC_KEYS"

#: ``encoding`` metadata of an encrypted payload.
ENCODING = b"binary/encrypted"
#: Metadata naming the key a payload was encrypted with.
KEY_ID_METADATA = "encryption-key-id"
#: Metadata naming the cipher (and this codec's format version).
CIPHER_METADATA = "encryption-cipher"
CIPHER = b"AES-256-GCM/stepped-1"

_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
#: Authenticated with every payload: ciphertext made for another purpose is refused.
_ASSOCIATED_DATA = b"stepped_temporal payload codec v1"


class CodecKeyError(SteppedError, ValueError):
    """A codec key that is missing or not 32 bytes of base64. Never shows the key."""


class DecryptionError(SteppedError):
    """An encrypted payload that no configured key opens (unknown key or tampered)."""


def generate_key() -> str:
    """A new random key, in base64, ready for ``STEPPED_CODEC_KEY``."""
    return base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode("ascii")


def parse_key(value: str | bytes, *, source: str = "the key") -> bytes:
    """The 32 bytes a key stands for: raw bytes, or base64 text (standard or URL-safe).

    `source` names where the key came from (an environment variable) in the
    error raised for a malformed key; the error never contains the key.
    """
    if isinstance(value, bytes) and len(value) == _KEY_BYTES:
        return value
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        raise CodecKeyError(f"{source} is empty; set it to 32 random bytes in base64")
    try:
        key = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise CodecKeyError(
            f"{source} is not valid base64; it must be 32 random bytes in base64 "
            f"(44 characters, e.g. from `python -m stepped_temporal.codec`)"
        ) from None
    if len(key) != _KEY_BYTES:
        if len(text) == 2 * _KEY_BYTES and all(c in "0123456789abcdefABCDEF" for c in text):
            raise CodecKeyError(
                f"{source} looks like hex; it must be 32 random bytes in base64 "
                f"(44 characters, e.g. from `python -m stepped_temporal.codec`)"
            )
        raise CodecKeyError(
            f"{source} decodes to {len(key)} bytes; AES-256 needs exactly {_KEY_BYTES} "
            f"(44 characters of base64, e.g. from `python -m stepped_temporal.codec`)"
        )
    return key


def key_id(key: bytes) -> str:
    """The public id of `key` stored with each payload: a short hash, not the key."""
    return hashlib.sha256(b"stepped_temporal codec key id\x00" + key).hexdigest()[:16]


def key_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The key in ``STEPPED_CODEC_KEY``; None when it is unset.

    Raises `CodecKeyError`, naming the variable, when it is set but malformed.
    """
    environ = os.environ if environ is None else environ
    value = environ.get(KEY_VARIABLE)
    if value is None:
        return None
    return parse_key(value, source=KEY_VARIABLE)


def _required_key_from_env(environ: Mapping[str, str] | None = None) -> bytes:
    key = key_from_env(environ)
    if key is None:
        raise CodecKeyError(
            f"{KEY_VARIABLE} is not set; set it to 32 random bytes in base64 "
            f"(e.g. from `python -m stepped_temporal.codec`)"
        )
    return key


def old_keys_from_env(environ: Mapping[str, str] | None = None) -> list[bytes]:
    """The decode-only keys in ``STEPPED_CODEC_KEYS`` (comma- or space-separated)."""
    environ = os.environ if environ is None else environ
    value = environ.get(OLD_KEYS_VARIABLE, "")
    parts = [part for part in value.replace(",", " ").split() if part]
    return [
        parse_key(part, source=f"{OLD_KEYS_VARIABLE} (key {number})")
        for number, part in enumerate(parts, start=1)
    ]


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole serialized payloads, tagged with the key's id.

    Encodes with `key`; decodes with `key` or any of `old_keys`. The encrypted
    payload's ``encoding`` is ``binary/encrypted``; its original metadata (the
    JSON encoding, and so on) is inside the ciphertext.
    """

    def __init__(self, key: str | bytes, old_keys: Iterable[str | bytes] = ()) -> None:
        """Create a codec; keys are raw 32 bytes or base64 text."""
        current = parse_key(key)
        self._key_id = key_id(current)
        self._cipher = AESGCM(current)
        self._decoders: dict[str, AESGCM] = {self._key_id: self._cipher}
        for number, old in enumerate(old_keys, start=1):
            parsed = parse_key(old, source=f"old key {number}")
            self._decoders.setdefault(key_id(parsed), AESGCM(parsed))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EncryptionCodec:
        """A codec from ``STEPPED_CODEC_KEY`` and ``STEPPED_CODEC_KEYS``.

        Raises `CodecKeyError` when ``STEPPED_CODEC_KEY`` is unset or malformed.
        """
        return cls(_required_key_from_env(environ), old_keys_from_env(environ))

    @property
    def key_id(self) -> str:
        """The id of the key this codec encrypts with."""
        return self._key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of every key this codec decrypts with, the current one first."""
        return tuple(self._decoders)

    def __repr__(self) -> str:
        return f"<EncryptionCodec key id {self._key_id}, decodes {len(self._decoders)} key(s)>"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt every payload (already encrypted ones are left as they are)."""
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt the encrypted payloads; pass every other payload through untouched."""
        return [self._decrypt(p) if is_encrypted(p) else p for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        if is_encrypted(payload):
            return payload
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._cipher.encrypt(nonce, payload.SerializeToString(), _ASSOCIATED_DATA)
        return Payload(
            metadata={
                "encoding": ENCODING,
                KEY_ID_METADATA: self._key_id.encode("ascii"),
                CIPHER_METADATA: CIPHER,
            },
            data=nonce + sealed,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        identity = payload.metadata.get(KEY_ID_METADATA, b"").decode("ascii", "replace")
        cipher_name = payload.metadata.get(CIPHER_METADATA, CIPHER)
        if cipher_name != CIPHER:
            shown, expected = cipher_name.decode("ascii", "replace"), CIPHER.decode("ascii")
            raise DecryptionError(
                f"encrypted payload uses cipher {shown!r}; this codec reads {expected!r}"
            )
        cipher = self._decoders.get(identity)
        if cipher is None:
            raise DecryptionError(
                f"encrypted payload has key id {identity!r}, but no configured key has it "
                f"(known: {', '.join(self._decoders)}); put the key it was encrypted with in "
                f"{KEY_VARIABLE} or, as an old key, in {OLD_KEYS_VARIABLE}"
            )
        data = payload.data
        try:
            if len(data) < _NONCE_BYTES + _TAG_BYTES:
                raise InvalidTag
            plain = cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], _ASSOCIATED_DATA)
        except InvalidTag:
            raise DecryptionError(
                f"encrypted payload with key id {identity!r} failed authentication: "
                f"it was altered, or encrypted with a different key"
            ) from None
        try:
            return Payload.FromString(plain)
        except DecodeError as error:  # pragma: no cover - authenticated, so ours
            raise DecryptionError(f"decrypted payload is not a payload: {error}") from None


def is_encrypted(payload: Payload) -> bool:
    """Whether `payload` is encrypted by this codec (its encoding is ``binary/encrypted``)."""
    return payload.metadata.get("encoding") == ENCODING


def data_converter(
    key: str | bytes | None = None,
    *,
    old_keys: Iterable[str | bytes] | None = None,
    encode_failures: bool = True,
) -> DataConverter:
    """Temporal's default data converter with an `EncryptionCodec`.

    Without `key`, the keys come from ``STEPPED_CODEC_KEY`` (required) and
    ``STEPPED_CODEC_KEYS``. `encode_failures` (the default) also moves failure
    messages and stack traces into an encrypted payload, since they often quote
    arguments; the Web UI then shows "Encoded failure" without a codec server.
    """
    if key is None:
        key = _required_key_from_env()
        if old_keys is None:
            old_keys = old_keys_from_env()
    codec = EncryptionCodec(key, old_keys or ())
    converter = dataclasses.replace(DataConverter.default, payload_codec=codec)
    if encode_failures:
        converter = dataclasses.replace(
            converter, failure_converter_class=DefaultFailureConverterWithEncodedAttributes
        )
    return converter


if __name__ == "__main__":
    print(generate_key())

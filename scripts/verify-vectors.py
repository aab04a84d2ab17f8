#!/usr/bin/env python3
"""Check protocol/testdata/vectors.json against docs/PROTOCOL.md.

This script is an independent implementation of the motcua wire protocol,
version 1, written from docs/PROTOCOL.md alone (no Rust source was read).
It uses only the generic `cbor2` and `cryptography` packages and the Python
standard library.

It implements the verification procedure of PROTOCOL.md section 3 -- twelve
checks applied in order, stopping at the first failure -- together with the
payload rules of section 4 and the framing of `up` payloads (section 7.1:
a single message or a bundle), and then classifies every test vector:

- its input is `cose_hex`, followed by zero bytes up to `padded_to` when
  that field is present; an `input` of `message` is one message verified as
  in section 3, an `input` of `up` is an `up` payload framed as in section
  7.1, each of its messages then verified as in section 3;
- a valid vector must be accepted, its decoded payload must equal
  `payload_json` and SHA-256 of its bytes must equal `sha256_hex` (for an
  `up` payload: arrays of those, one per message, in order);
- an invalid vector must be refused, with the reason code of section 3 or
  7.1 that the vector's `error` field names (a different reason code is a
  failure, because those sections fix the order of the checks);
- every reason code of sections 3 and 7.1 must be the `error` of at least
  one vector;
- the valid vectors must tell the chain story of sections 5 and 10:
  submission-seq2's `prev` is the hash of submission-seq1, and the receipt's
  `hash` is the hash of submission-seq2.

Usage: verify-vectors.py [path/to/vectors.json]
(default: ../protocol/testdata/vectors.json relative to this script).

Output: one line per vector and per chain check (`ok   name` or
`FAIL name: why`), then `N passed, M failed`. The exit status is 0 only when
nothing failed, 1 when something did, 2 when a required package is missing.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import math
import re
import struct
import sys
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

try:
    import cbor2
except ImportError:
    print("verify-vectors.py needs the cbor2 package: pip install cbor2", file=sys.stderr)
    sys.exit(2)

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:
    print("verify-vectors.py needs the cryptography package: pip install cryptography",
          file=sys.stderr)
    sys.exit(2)


# --- constants from PROTOCOL.md ------------------------------------------------

MAX_MESSAGE_BYTES = 65_536                # sections 3 (step 1) and 9
COSE_SIGN1_TAG = 18                       # section 2
ALG_EDDSA = -8                            # section 2, label 1
CONTENT_TYPE = "application/json"         # section 2, label 3
KID_BYTES = 16                            # section 2, label 4
LABEL_ALG, LABEL_CONTENT_TYPE, LABEL_KID, LABEL_TYP = 1, 3, 4, 16
PROTECTED_LABELS = {LABEL_ALG, LABEL_CONTENT_TYPE, LABEL_KID, LABEL_TYP}

TYP = {                                   # section 2, message types; 7.3
    "submission": "application/vnd.motcua.submission+cose",
    "receipt": "application/vnd.motcua.receipt+cose",
    "catalogue": "application/vnd.motcua.catalogue+cose",
    "status updates": "application/vnd.motcua.status-updates+cose",
    "settings": "application/vnd.motcua.settings+cose",
    "units": "application/vnd.motcua.units+cose",
}
MAX_CATALOGUE_BYTES = 1_048_576            # section 7.3
MAX_UP_BYTES = 1_048_576                   # section 7.1, framing step 2
MAX_BUNDLE_MESSAGES = 256                  # section 7.1
MAX_STATUS_UPDATES = 256                   # section 7.3

PROTOCOL_VERSION = 1                      # sections 4 and 9
SUBMISSION_DC_CLOCK_VERSION = 2           # section 4.1: a time derived from the DC
MAX_INTEGER = 2**53 - 1                   # section 4
ZERO_HASH = "0" * 64                      # sections 4.1 and 4.2

SUBMISSION_MEMBERS = {"v", "device", "seq", "prev", "at", "clock", "staff", "kind", "body"}
SUBMISSION_V2_MEMBERS = SUBMISSION_MEMBERS | {"clock_dc"}
RECEIPT_MEMBERS = {"v", "device", "seq", "hash", "at"}

# Section 4 identifiers. Character classes are spelled out so that only ASCII
# matches (Python's \d would also match non-ASCII digits).
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,63}")
STAFF_ID = re.compile(r"[A-Za-z0-9._@-]{1,64}")
KIND = re.compile(r"[a-z_]+(?:\.[a-z_]+)+")
KIND_MAX = 64
HASH = re.compile(r"[0-9a-f]{64}")
# RFC 3339 date-time restricted to UTC: offset "Z" or "+00:00" (section 4).
TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.[0-9]+)?(?:Z|\+00:00)"
)

# Ed25519 (RFC 8032) curve constants, for the strict checks of step 9.
ED_P = 2**255 - 19
ED_L = 2**252 + 27742317777372353535851937790883648493
ED_D = -121665 * pow(121666, ED_P - 2, ED_P) % ED_P
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)


class Refused(Exception):
    """A message refused by the verifier, with the section 3 reason code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def kid_of(public_key: bytes) -> bytes:
    """Section 2: the kid is the first 16 bytes of SHA-256 of the raw 32-byte key."""
    return hashlib.sha256(public_key).digest()[:KID_BYTES]


def is_integer(value: Any) -> bool:
    """A JSON integer: written without fraction or exponent (bool is not one)."""
    return type(value) is int


# --- step 1 --------------------------------------------------------------------

def step1_length(data: bytes, message_type: str) -> None:
    """Length at most 65 536 bytes (a catalogue: 1 048 576), checked before decoding (`too_large`)."""
    limit = MAX_CATALOGUE_BYTES if message_type in ("catalogue", "units") else MAX_MESSAGE_BYTES
    if len(data) > limit:
        raise Refused("too_large", f"{len(data)} bytes, the limit is {limit}")


# --- step 2 --------------------------------------------------------------------

def step2_decode(data: bytes) -> tuple[bytes, Mapping, bytes | None, bytes]:
    """Decode a tagged COSE_Sign1 with no trailing bytes (`not_cose`).

    Returns (protected, unprotected, payload, signature). A nil payload is let
    through here so that step 7 can report it as `detached_payload`. (cbor2
    may hand back a tag's content as a tuple and its maps as frozendict.)
    """
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except Exception as exc:  # any decoding failure of the generic library
        raise Refused("not_cose", f"not decodable as CBOR ({exc})") from None
    if stream.tell() != len(data):
        raise Refused("not_cose", f"{len(data) - stream.tell()} byte(s) after the CBOR item")
    if not isinstance(item, cbor2.CBORTag):
        raise Refused("not_cose", f"not tagged (a {type(item).__name__}), tag 18 is required")
    if item.tag != COSE_SIGN1_TAG:
        raise Refused("not_cose", f"tag {item.tag}, tag 18 is required")
    body = item.value
    if not isinstance(body, (list, tuple)) or len(body) != 4:
        raise Refused("not_cose", "tag 18 does not hold a four-element array")
    protected, unprotected, payload, signature = body
    if type(protected) is not bytes:
        raise Refused("not_cose", "protected header is not a bstr")
    if not isinstance(unprotected, Mapping):
        raise Refused("not_cose", "unprotected header is not a map")
    if payload is not None and type(payload) is not bytes:
        raise Refused("not_cose", "payload is neither a bstr nor nil")
    if type(signature) is not bytes:
        raise Refused("not_cose", "signature is not a bstr")
    return protected, unprotected, payload, signature


# --- step 3 --------------------------------------------------------------------

class _NotPreferred(Exception):
    """An encoding choice that RFC 8949 preferred serialization does not make."""


def _argument(data: bytes, pos: int, info: int, start: int) -> tuple[int, int]:
    """Read a head's argument; refuse any form longer than needed."""
    if info < 24:
        return info, pos
    if info > 27:
        raise _NotPreferred(f"reserved additional information {info} at offset {start}")
    size = 1 << (info - 24)                                  # 1, 2, 4 or 8 bytes
    if pos + size > len(data):
        raise _NotPreferred(f"truncated head at offset {start}")
    value = int.from_bytes(data[pos:pos + size], "big")
    shortest = 0 if value < 24 else 1 if value < 2**8 else 2 if value < 2**16 else 4 if value < 2**32 else 8
    if size != shortest:
        raise _NotPreferred(f"argument {value} at offset {start} uses {size} byte(s), not the shortest form")
    return value, pos + size


def _float_fits(raw: bytes, wide: str, narrow: str, nan_low_bits: int) -> bool:
    """True when the float in `raw` is exactly representable in the narrower format."""
    value = struct.unpack(wide, raw)[0]
    if math.isnan(value):
        # A NaN narrows exactly when the mantissa bits that would be dropped are zero.
        bits = int.from_bytes(raw, "big")
        return bits & ((1 << nan_low_bits) - 1) == 0
    try:
        return struct.unpack(narrow, struct.pack(narrow, value))[0] == value
    except (OverflowError, struct.error):
        return False


def _preferred_end(data: bytes, pos: int, depth: int = 0) -> int:
    """Walk one CBOR item from `pos`, checking preferred serialization; return its end."""
    if depth > 1000:
        raise _NotPreferred("nesting too deep")
    if pos >= len(data):
        raise _NotPreferred("truncated item")
    start = pos
    major, info = data[pos] >> 5, data[pos] & 0x1F
    pos += 1
    if info == 31:
        raise _NotPreferred(f"indefinite length (or break) at offset {start}")
    if major == 7:
        if info < 24:
            return pos
        if info == 24:
            if data[pos] < 32:
                raise _NotPreferred(f"simple value {data[pos]} in two bytes at offset {start}")
            return pos + 1
        if info == 25:
            return pos + 2
        if info == 26:
            if _float_fits(data[pos:pos + 4], ">f", ">e", 13):
                raise _NotPreferred(f"float32 at offset {start} fits a float16")
            return pos + 4
        if info == 27:
            if _float_fits(data[pos:pos + 8], ">d", ">f", 29):
                raise _NotPreferred(f"float64 at offset {start} fits a float32")
            return pos + 8
        raise _NotPreferred(f"reserved additional information {info} at offset {start}")
    value, pos = _argument(data, pos, info, start)
    if major in (0, 1):
        return pos
    if major in (2, 3):
        if pos + value > len(data):
            raise _NotPreferred(f"truncated string at offset {start}")
        return pos + value
    if major in (4, 5):
        for _ in range(value * (2 if major == 5 else 1)):
            pos = _preferred_end(data, pos, depth + 1)
        return pos
    # major 6: a tag. Bignums (tags 2 and 3) have a preferred form of their own
    # (RFC 8949 section 3.4.3): no leading zero byte, and never for a value
    # that a plain integer (major type 0 or 1) can carry.
    if value in (2, 3) and pos < len(data) and data[pos] >> 5 == 2 and data[pos] & 0x1F != 31:
        length, content = _argument(data, pos + 1, data[pos] & 0x1F, pos)
        magnitude = data[content:content + length]
        if magnitude[:1] == b"\x00" or int.from_bytes(magnitude, "big") < 2**64:
            raise _NotPreferred(f"bignum at offset {start} is not in its preferred form")
    return _preferred_end(data, pos, depth + 1)


def step3_canonical(data: bytes) -> None:
    """The input is exactly the preferred serialization of what it decodes to (`not_canonical`)."""
    try:
        end = _preferred_end(data, 0)
    except _NotPreferred as exc:
        raise Refused("not_canonical", str(exc)) from None
    except (IndexError, RecursionError) as exc:
        raise Refused("not_canonical", f"unexpected structure ({exc})") from None
    if end != len(data):  # cannot happen after step 2, kept as a guard
        raise Refused("not_canonical", "bytes after the item")


# --- step 4 --------------------------------------------------------------------

def step4_unprotected(unprotected: Mapping) -> None:
    """The unprotected header is the empty map (`unprotected_header`)."""
    if unprotected:
        labels = ", ".join(repr(label) for label in unprotected)
        raise Refused("unprotected_header", f"unprotected header is not empty (labels {labels})")


# --- step 5 --------------------------------------------------------------------

def _map_entry_count(data: bytes) -> int | None:
    """The number of entries a CBOR map's head announces (None: not a definite map)."""
    if not data or data[0] >> 5 != 5 or data[0] & 0x1F > 27:
        return None
    info = data[0] & 0x1F
    if info < 24:
        return info
    size = 1 << (info - 24)
    return int.from_bytes(data[1:1 + size], "big")


def step5_protected(protected: bytes) -> Mapping:
    """The protected header is a map of exactly labels 1, 3, 4, 16 with the right values (`bad_header`)."""
    stream = io.BytesIO(protected)
    try:
        header = cbor2.CBORDecoder(stream).decode()
    except Exception as exc:
        raise Refused("bad_header", f"protected header does not decode ({exc})") from None
    if stream.tell() != len(protected):
        raise Refused("bad_header", "bytes after the protected header map")
    if not isinstance(header, Mapping):
        raise Refused("bad_header", f"protected header is a {type(header).__name__}, not a map")
    # Labels are integers; Python would otherwise equate 1, 1.0 and True.
    if any(type(label) is not int for label in header):
        raise Refused("bad_header", f"non-integer label in {sorted(map(repr, header))}")
    if set(header) != PROTECTED_LABELS:
        raise Refused("bad_header", f"labels {sorted(header)}, expected exactly [1, 3, 4, 16]")
    if _map_entry_count(protected) != len(header):
        raise Refused("bad_header", "a label appears more than once")
    alg = header[LABEL_ALG]
    if type(alg) is not int or alg != ALG_EDDSA:
        raise Refused("bad_header", f"alg is {alg!r}, expected -8 (EdDSA)")
    content_type = header[LABEL_CONTENT_TYPE]
    if type(content_type) is not str or content_type != CONTENT_TYPE:
        raise Refused("bad_header", f"content type is {content_type!r}, expected {CONTENT_TYPE!r}")
    kid = header[LABEL_KID]
    if type(kid) is not bytes or len(kid) != KID_BYTES:
        raise Refused("bad_header", f"kid is not a {KID_BYTES}-byte bstr")
    if type(header[LABEL_TYP]) is not str:
        raise Refused("bad_header", "typ is not text")
    return header


# --- step 6 --------------------------------------------------------------------

def step6_type(header: Mapping, expected_typ: str) -> None:
    """typ equals the typ of the expected message type (`wrong_type`)."""
    if header[LABEL_TYP] != expected_typ:
        raise Refused("wrong_type", f"typ is {header[LABEL_TYP]!r}, expected {expected_typ!r}")


# --- step 7 --------------------------------------------------------------------

def step7_payload_present(payload: bytes | None) -> bytes:
    """The payload is a bstr, not nil (`detached_payload`)."""
    if payload is None:
        raise Refused("detached_payload", "payload is nil (detached)")
    return payload


# --- step 8 --------------------------------------------------------------------

def step8_lookup_key(header: Mapping, trusted_keys: dict[bytes, bytes]) -> bytes:
    """Find the trusted public key whose kid is the header's kid (`key_mismatch`)."""
    kid = header[LABEL_KID]
    key = trusted_keys.get(kid)
    if key is None:
        raise Refused("key_mismatch", f"no trusted key has kid {kid.hex()}")
    return key


# --- step 9 --------------------------------------------------------------------

def _decode_point(encoded: bytes) -> tuple[int, int] | None:
    """RFC 8032 section 5.1.3 point decoding; None if the encoding is not a point."""
    y = int.from_bytes(encoded, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= ED_P:
        return None
    x2 = (y * y - 1) * pow(ED_D * y * y + 1, ED_P - 2, ED_P) % ED_P
    if x2 == 0:
        return None if sign else (0, y)
    x = pow(x2, (ED_P + 3) // 8, ED_P)
    if (x * x - x2) % ED_P:
        x = x * ED_SQRT_M1 % ED_P
    if (x * x - x2) % ED_P:
        return None
    if x & 1 != sign:
        x = ED_P - x
    return x, y


def _point_double(point: tuple[int, int]) -> tuple[int, int]:
    """Affine twisted-Edwards addition of a point to itself (a = -1)."""
    x, y = point
    t = ED_D * x * x * y * y % ED_P
    return (2 * x * y * pow(1 + t, ED_P - 2, ED_P) % ED_P,
            (y * y + x * x) * pow(1 - t, ED_P - 2, ED_P) % ED_P)


def _is_small_order(point: tuple[int, int]) -> bool:
    """True when 8 * point is the neutral element (0, 1)."""
    for _ in range(3):
        point = _point_double(point)
    return point == (0, 1)


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """Section 2: the CBOR encoding of ["Signature1", protected, external_aad, payload]."""
    return cbor2.dumps(["Signature1", protected, external_aad, payload])


def step9_signature(public_key: bytes, protected: bytes, payload: bytes, signature: bytes) -> None:
    """Strict Ed25519 over the Sig_structure with empty external_aad (`bad_signature`)."""
    if len(signature) != 64:
        raise Refused("bad_signature", f"signature is {len(signature)} bytes, not 64")
    if int.from_bytes(signature[32:], "little") >= ED_L:
        raise Refused("bad_signature", "signature S is not below the group order")
    point = _decode_point(public_key) if len(public_key) == 32 else None
    if point is None:
        raise Refused("bad_signature", "public key is not an Ed25519 point")
    if _is_small_order(point):
        raise Refused("bad_signature", "public key is of small order")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, sig_structure(protected, payload))
    except (InvalidSignature, ValueError):
        raise Refused("bad_signature", "Ed25519 signature does not verify") from None


# --- step 10 -------------------------------------------------------------------

def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    """json object hook: refuse a key seen twice in one object (keys are already unescaped)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> None:
    """json hook: NaN, Infinity and -Infinity are not RFC 8259 JSON."""
    raise ValueError(f"{name} is not JSON")


def step10_json(payload: bytes) -> Any:
    """One UTF-8 JSON value, only JSON white space after it, no duplicate keys (`bad_payload`)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused("bad_payload", f"payload is not UTF-8 ({exc})") from None
    # json.loads allows only " \t\n\r" around the value, refuses any other
    # trailing data ("Extra data"), a byte order mark and control characters
    # inside strings.
    try:
        return json.loads(text, object_pairs_hook=_object_without_duplicates,
                          parse_constant=_refuse_constant)
    except ValueError as exc:
        raise Refused("bad_payload", f"payload is not strict JSON ({exc})") from None


# --- step 11 -------------------------------------------------------------------

def step11_version(value: Any, message_type: str) -> dict:
    """The payload is an object whose v is 1, or 2 for a submission (`unsupported_version` for another integer)."""
    if not isinstance(value, dict):
        raise Refused("bad_payload", f"payload is a JSON {type(value).__name__}, not an object")
    if "v" not in value:
        raise Refused("bad_payload", "payload has no member v")
    version = value["v"]
    if not is_integer(version) or not 0 <= version <= MAX_INTEGER:
        raise Refused("bad_payload", f"v is {version!r}, not an integer in 0..=2^53-1")
    known = (PROTOCOL_VERSION, SUBMISSION_DC_CLOCK_VERSION) if message_type == "submission" else (PROTOCOL_VERSION,)
    if version not in known:
        raise Refused("unsupported_version", f"v is {version}, this verifier knows {known} for a {message_type}")
    return value


# --- step 12 -------------------------------------------------------------------

def _check_time(name: str, value: Any) -> None:
    """Section 4 times: RFC 3339 in UTC, offset Z or +00:00."""
    match = TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise Refused("bad_payload", f"{name} is {value!r}, not an RFC 3339 UTC time")
    year, month, day, hour, minute, second = map(int, match.groups())
    try:
        datetime.date(year, month, day)
    except ValueError:
        raise Refused("bad_payload", f"{name} {value!r} is not a calendar date") from None
    leap_second = (hour, minute, second) == (23, 59, 60)      # RFC 3339 section 5.7
    if hour > 23 or minute > 59 or (second > 59 and not leap_second):
        raise Refused("bad_payload", f"{name} {value!r} is not a time of day")


def _check_id(name: str, value: Any, pattern: re.Pattern, what: str) -> None:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise Refused("bad_payload", f"{name} is {value!r}, not a {what}")


def _check_members(payload: dict, expected: set[str], kind: str) -> None:
    missing, extra = expected - payload.keys(), payload.keys() - expected
    if missing or extra:
        raise Refused("bad_payload", f"{kind} members: missing {sorted(missing)}, unexpected {sorted(extra)}")


def _check_seq(value: Any, low: int) -> int:
    if not is_integer(value) or not low <= value <= MAX_INTEGER:
        raise Refused("bad_payload", f"seq is {value!r}, not an integer in {low}..=2^53-1")
    return value


def _check_hash_for_seq(name: str, value: Any, seq: int, zero_seq: int) -> None:
    """A hash that is 64 zeros when, and only when, seq is `zero_seq`."""
    _check_id(name, value, HASH, "SHA-256 hash (64 lower-case hex digits)")
    if (value == ZERO_HASH) != (seq == zero_seq):
        raise Refused("bad_payload", f"{name} must be 64 zeros when, and only when, seq is {zero_seq}")


def check_submission(payload: dict) -> None:
    """Section 4.1."""
    if payload["v"] == SUBMISSION_DC_CLOCK_VERSION:
        _check_members(payload, SUBMISSION_V2_MEMBERS, "version 2 submission")
        clock_dc = payload["clock_dc"]
        if not is_integer(clock_dc) or not 0 <= clock_dc <= MAX_INTEGER:
            raise Refused("bad_payload", f"clock_dc is {clock_dc!r}, not an integer in 0..=2^53-1")
        if payload["clock"] is not False:
            raise Refused("bad_payload", "clock_dc goes with clock false")
    else:
        _check_members(payload, SUBMISSION_MEMBERS, "submission")
    _check_id("device", payload["device"], DEVICE_ID, "device id")
    seq = _check_seq(payload["seq"], 1)
    _check_hash_for_seq("prev", payload["prev"], seq, 1)
    _check_time("at", payload["at"])
    if type(payload["clock"]) is not bool:
        raise Refused("bad_payload", f"clock is {payload['clock']!r}, not a boolean")
    _check_id("staff", payload["staff"], STAFF_ID, "staff id")
    kind = payload["kind"]
    _check_id("kind", kind, KIND, "kind (two or more words of a-z and _ joined by .)")
    if len(kind) > KIND_MAX:
        raise Refused("bad_payload", f"kind is {len(kind)} characters, at most {KIND_MAX}")
    if not isinstance(payload["body"], dict):
        raise Refused("bad_payload", "body is not an object")


def check_receipt(payload: dict) -> None:
    """Section 4.2."""
    _check_members(payload, RECEIPT_MEMBERS, "receipt")
    _check_id("device", payload["device"], DEVICE_ID, "device id")
    seq = _check_seq(payload["seq"], 0)
    _check_hash_for_seq("hash", payload["hash"], seq, 0)
    _check_time("at", payload["at"])


def _check_object(name: str, value: Any, required: set[str], optional: set[str]) -> dict:
    """An object with every required member, optional ones, nothing else."""
    if not isinstance(value, dict):
        raise Refused("bad_payload", f"{name} is not an object")
    missing, extra = required - value.keys(), value.keys() - required - optional
    if missing or extra:
        raise Refused("bad_payload", f"{name} members: missing {sorted(missing)}, unexpected {sorted(extra)}")
    return value


def _check_int(name: str, value: Any, low: int, high: int = MAX_INTEGER) -> int:
    if not is_integer(value) or not low <= value <= high:
        raise Refused("bad_payload", f"{name} is {value!r}, not an integer in {low}..={high}")
    return value


def _check_text(name: str, value: Any, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise Refused("bad_payload", f"{name} is {value!r}, not text")


PROCEDURE_CODE = re.compile(r"[A-Za-z0-9.]{1,64}")
UNIT_CODE = re.compile(r"[A-Z][0-9]{2}(?:\.[0-9]{1,3}){0,3}")  # QCVN 102:2016, e.g. H49.12.3
DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def check_catalogue(payload: dict) -> None:
    """Section 7.3, catalogue."""
    _check_members(payload, {"v", "version", "issued_at", "procedures", "holidays", "workdays"}, "catalogue")
    _check_int("version", payload["version"], 1)
    _check_time("issued_at", payload["issued_at"])
    if not isinstance(payload["procedures"], list):
        raise Refused("bad_payload", "procedures is not an array")
    codes = set()
    for p in payload["procedures"]:
        _check_object("procedure", p, {"code", "name", "working_days"}, {"fee", "documents"})
        _check_id("procedure code", p["code"], PROCEDURE_CODE, "procedure code")
        if p["code"] in codes:
            raise Refused("bad_payload", f"procedure code {p['code']} appears twice")
        codes.add(p["code"])
        _check_text("procedure name", p["name"])
        if not p["name"].strip() or len(p["name"]) > 500:
            raise Refused("bad_payload", "a procedure name is 1 to 500 characters")
        _check_int("working_days", p["working_days"], 0, 65_535)
        if p.get("fee") is not None:
            _check_int("fee", p["fee"], 0)
        documents = p.get("documents", [])
        if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
            raise Refused("bad_payload", "documents is not an array of text")
    for member in ("holidays", "workdays"):
        if not isinstance(payload[member], list):
            raise Refused("bad_payload", f"{member} is not an array")
        for d in payload[member]:
            _check_object(member[:-1], d, {"day"}, {"name"})
            match = DAY.fullmatch(d["day"]) if isinstance(d["day"], str) else None
            try:
                if match is None:
                    raise ValueError
                datetime.date(*map(int, match.groups()))
            except ValueError:
                raise Refused("bad_payload", f"{member} day {d['day']!r} is not YYYY-MM-DD") from None
            _check_text("day name", d.get("name"), optional=True)


def check_status_updates(payload: dict) -> None:
    """Section 7.3, status updates."""
    _check_members(payload, {"v", "device", "seq", "issued_at", "updates"}, "status updates")
    _check_id("device", payload["device"], DEVICE_ID, "device id")
    _check_seq(payload["seq"], 1)
    _check_time("issued_at", payload["issued_at"])
    updates = payload["updates"]
    if not isinstance(updates, list) or len(updates) > MAX_STATUS_UPDATES:
        raise Refused("bad_payload", f"updates is not an array of at most {MAX_STATUS_UPDATES}")
    previous = None
    for u in updates:
        _check_object("update", u, {"id", "code", "status", "at", "by"}, {"note"})
        ident = _check_int("id", u["id"], 0)
        if previous is not None and ident <= previous:
            raise Refused("bad_payload", "update ids must increase")
        previous = ident
        _check_text("code", u["code"])
        _check_int("status", u["status"], 1, 10)
        _check_time("at", u["at"])
        _check_text("by", u["by"])
        _check_text("note", u.get("note"), optional=True)


def check_settings(payload: dict) -> None:
    """Section 7.3, settings: no member beyond these."""
    _check_object("settings", payload, {"v", "device", "seq", "issued_at"}, {"health_interval_s"})
    _check_id("device", payload["device"], DEVICE_ID, "device id")
    _check_seq(payload["seq"], 1)
    _check_time("issued_at", payload["issued_at"])
    if payload.get("health_interval_s") is not None:
        _check_int("health_interval_s", payload["health_interval_s"], 0)


def check_units(payload: dict) -> None:
    """Section 7.3, units: each code once, a name and a place."""
    _check_object("units", payload, {"v", "version", "issued_at", "units"}, set())
    _check_int("version", payload["version"], 1)
    _check_time("issued_at", payload["issued_at"])
    if not isinstance(payload["units"], list):
        raise Refused("bad_payload", "units is not an array")
    codes = set()
    for u in payload["units"]:
        _check_object("unit", u, {"code", "name", "place"}, set())
        _check_id("unit code", u["code"], UNIT_CODE, "unit code")
        if u["code"] in codes:
            raise Refused("bad_payload", f"unit code {u['code']} appears twice")
        codes.add(u["code"])
        for member, longest in (("name", 200), ("place", 100)):
            _check_text(f"unit {member}", u[member])
            text = u[member]
            if not text.strip() or len(text) > longest or any(unicodedata.category(c) == "Cc" for c in text):
                raise Refused("bad_payload", f"a unit {member} is 1 to {longest} characters, no control characters")


PAYLOAD_RULES: dict[str, Callable[[dict], None]] = {
    "submission": check_submission,
    "receipt": check_receipt,
    "catalogue": check_catalogue,
    "status updates": check_status_updates,
    "settings": check_settings,
    "units": check_units,
}


def step12_members(payload: dict, message_type: str) -> None:
    """Exactly the members of the type, each of the stated type and form (`bad_payload`)."""
    PAYLOAD_RULES[message_type](payload)


# --- the procedure ---------------------------------------------------------------

def verify(data: bytes, message_type: str, trusted_keys: dict[bytes, bytes]) -> dict:
    """Section 3: verify a message of the expected type; return its payload or raise Refused."""
    step1_length(data, message_type)
    protected, unprotected, payload, signature = step2_decode(data)
    step3_canonical(data)
    step4_unprotected(unprotected)
    header = step5_protected(protected)
    step6_type(header, TYP[message_type])
    payload = step7_payload_present(payload)
    public_key = step8_lookup_key(header, trusted_keys)
    step9_signature(public_key, protected, payload, signature)
    value = step10_json(payload)
    document = step11_version(value, message_type)
    step12_members(document, message_type)
    return document


# --- section 7.1: framing an up payload --------------------------------------------

def _bundle_head(data: bytes, pos: int, major: int, what: str) -> tuple[int, int]:
    """A definite-length, shortest-form CBOR head of `major` at `pos`: (argument, next position)."""
    if pos >= len(data):
        raise Refused("bad_bundle", f"truncated before {what}")
    if data[pos] >> 5 != major:
        raise Refused("bad_bundle", f"{what} is of major type {data[pos] >> 5}, not {major}")
    if data[pos] & 0x1F == 31:
        raise Refused("bad_bundle", f"{what} has an indefinite length")
    try:
        value, end = _argument(data, pos + 1, data[pos] & 0x1F, pos)
    except _NotPreferred as exc:
        raise Refused("bad_bundle", f"{what}: {exc}") from None
    return value, end


def frame_up(data: bytes) -> list[bytes]:
    """Section 7.1: the messages an up payload carries, or Refused (`empty`, `too_large`, `not_cose`, `bad_bundle`)."""
    if not data:
        raise Refused("empty", "the payload is empty")
    if len(data) > MAX_UP_BYTES:
        raise Refused("too_large", f"{len(data)} bytes, an up payload is at most {MAX_UP_BYTES}")
    if data[0] == 0xD2:                                       # tag 18: a single message
        return [data]
    if data[0] >> 5 != 4:
        raise Refused("not_cose", f"first byte {data[0]:#04x} is neither 0xd2 nor an array")
    count, pos = _bundle_head(data, 0, 4, "the array")
    if not 1 <= count <= MAX_BUNDLE_MESSAGES:
        raise Refused("bad_bundle", f"{count} items, a bundle holds 1 to {MAX_BUNDLE_MESSAGES}")
    items = []
    for index in range(count):
        length, pos = _bundle_head(data, pos, 2, f"item {index}")
        if length > MAX_MESSAGE_BYTES:
            raise Refused("bad_bundle", f"item {index} is {length} bytes, over {MAX_MESSAGE_BYTES}")
        if pos + length > len(data):
            raise Refused("bad_bundle", f"item {index} is truncated")
        items.append(data[pos:pos + length])
        pos += length
    if pos != len(data):
        raise Refused("bad_bundle", f"{len(data) - pos} byte(s) after the array")
    return items


# --- the vectors -----------------------------------------------------------------

# Every reason code of sections 3 and 7.1; each must be some vector's error.
REASON_CODES = (
    "too_large", "not_cose", "not_canonical", "unprotected_header", "bad_header",
    "wrong_type", "detached_payload", "key_mismatch", "bad_signature", "bad_payload",
    "unsupported_version", "empty", "bad_bundle",
)

def same_json(a: Any, b: Any) -> bool:
    """JSON equality that keeps 1, 1.0 and true apart."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same_json, a, b))
    return a == b


def check_vector(vector: dict, decoded: dict[str, dict]) -> str | None:
    """Classify one vector; return None when it behaves as stated, else why not."""
    message_type = vector.get("message_type")
    if message_type not in TYP:
        return f"unknown message_type {message_type!r}"
    if vector.get("typ") != TYP[message_type]:
        return f"typ field {vector.get('typ')!r} is not section 2's typ for {message_type}"
    if vector.get("external_aad_hex") != "":
        return "external_aad_hex is not empty"
    kind = vector.get("input")
    if kind not in ("message", "up"):
        return f"unknown input {kind!r}"
    if kind == "up" and message_type != "submission":
        return "an up payload carries submissions (section 7.1)"
    data = bytes.fromhex(vector["cose_hex"])
    if "padded_to" in vector:
        padded_to = vector["padded_to"]
        if not is_integer(padded_to) or padded_to <= len(data):
            return f"padded_to {padded_to!r} is not beyond the {len(data)} bytes of cose_hex"
        data += bytes(padded_to - len(data))
    public_key = bytes.fromhex(vector["public_key_hex"])
    trusted_keys = {kid_of(public_key): public_key}
    try:
        if kind == "message":
            messages = [data]
            payloads = [verify(data, message_type, trusted_keys)]
        else:
            messages = frame_up(data)
            payloads = [verify(item, message_type, trusted_keys) for item in messages]
    except Refused as refusal:
        if vector["valid"]:
            return f"valid vector refused ({refusal.code}: {refusal.detail})"
        if refusal.code != vector.get("error"):
            return (f"refused with {refusal.code} ({refusal.detail}), "
                    f"but the vector's error is {vector.get('error')}")
        return None
    if not vector["valid"]:
        return f"accepted, but the vector expects refusal with {vector.get('error')}"
    digests = [hashlib.sha256(message).hexdigest() for message in messages]
    if kind == "message":
        payload, digest = payloads[0], digests[0]
        decoded[vector["name"]] = payload
    else:
        payload, digest = payloads, digests
    if not same_json(payload, vector.get("payload_json")):
        return "decoded payload differs from payload_json"
    if digest != vector.get("sha256_hex"):
        return f"SHA-256 of the bytes is {digest}, sha256_hex says {vector.get('sha256_hex')}"
    return None


def check_coverage(vectors: list[dict]) -> str | None:
    """Every reason code of sections 3 and 7.1 is the error of some vector."""
    missing = [code for code in REASON_CODES
               if not any(v.get("error") == code and not v.get("valid") for v in vectors)]
    return f"no vector refused with {', '.join(missing)}" if missing else None


def check_chain(vectors: dict[str, dict], decoded: dict[str, dict]) -> list[tuple[str, str | None]]:
    """Sections 5 and 10: seq1 -> seq2 -> receipt, using the bytes' own hashes."""
    names = ("submission-seq1", "submission-seq2", "receipt")
    missing = [name for name in names if name not in decoded]
    if missing:
        return [("chain", f"no accepted vector named {', '.join(missing)}")]
    first, second, receipt = (decoded[name] for name in names)
    hash_of = {name: hashlib.sha256(bytes.fromhex(vectors[name]["cose_hex"])).hexdigest()
               for name in names}
    results = []
    why = None
    if (first["seq"], second["seq"]) != (1, 2) or first["device"] != second["device"]:
        why = "submission-seq1 and submission-seq2 are not seq 1 and 2 of one device"
    elif second["prev"] != hash_of["submission-seq1"]:
        why = f"prev is {second['prev']}, SHA-256 of submission-seq1 is {hash_of['submission-seq1']}"
    elif second["prev"] != vectors["submission-seq1"]["sha256_hex"]:
        why = "prev differs from submission-seq1's sha256_hex"
    results.append(("chain submission-seq1 -> submission-seq2", why))
    why = None
    if receipt["device"] != second["device"] or receipt["seq"] != second["seq"]:
        why = "the receipt does not name submission-seq2's device and seq"
    elif receipt["hash"] != hash_of["submission-seq2"]:
        why = f"hash is {receipt['hash']}, SHA-256 of submission-seq2 is {hash_of['submission-seq2']}"
    elif receipt["hash"] != vectors["submission-seq2"]["sha256_hex"]:
        why = "hash differs from submission-seq2's sha256_hex"
    results.append(("chain submission-seq2 -> receipt", why))
    return results


def main(argv: list[str]) -> int:
    default = Path(__file__).resolve().parent / ".." / "protocol" / "testdata" / "vectors.json"
    path = Path(argv[1]) if len(argv) > 1 else default
    with open(path, encoding="utf-8") as handle:
        vectors = json.load(handle)

    passed = failed = 0

    def report(name: str, why: str | None, note: str = "") -> None:
        nonlocal passed, failed
        if why is None:
            passed += 1
            print(f"ok   {name}{note}")
        else:
            failed += 1
            print(f"FAIL {name}: {why}")

    decoded: dict[str, dict] = {}
    by_name: dict[str, dict] = {}
    for vector in vectors:
        name = vector.get("name", "<unnamed>")
        by_name[name] = vector
        try:
            why = check_vector(vector, decoded)
        except (KeyError, TypeError, ValueError) as exc:
            why = f"malformed vector ({type(exc).__name__}: {exc})"
        note = "" if vector.get("valid") else f" (refused: {vector.get('error')})"
        report(name, why, note)

    for name, why in check_chain(by_name, decoded):
        report(name, why)
    report("every reason code of sections 3 and 7.1 has a vector", check_coverage(vectors))

    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

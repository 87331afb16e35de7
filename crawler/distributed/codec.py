"""JSON for what travels through Redis: requests (scrapy-redis's
SCHEDULER_SERIALIZER: a module with `dumps` and `loads`) and items.

Not pickle, scrapy-redis's default: with pickle, whoever can write to the
Redis server could run code in every worker and in the writer. Bytes are
base64 in a one-key object, and so are dicts whose keys are bytes (request
headers); tuples come back as lists.
"""

from __future__ import annotations

import base64
import json
from typing import Any

_BYTES = "__b64__"
_BYTES_DICT = "__b64dict__"


def _plain(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {_BYTES: base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _plain(v) for k, v in obj.items()}
        return {_BYTES_DICT: [[_plain(k), _plain(v)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"a {type(obj).__name__} cannot travel through Redis (request meta and items must be JSON data)")


def _hook(obj: dict) -> Any:
    if len(obj) == 1:
        if _BYTES in obj:
            return base64.b64decode(obj[_BYTES])
        if _BYTES_DICT in obj:
            return {k: v for k, v in obj[_BYTES_DICT]}
    return obj


def _default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {_BYTES: base64.b64encode(bytes(obj)).decode("ascii")}
    raise TypeError(f"a {type(obj).__name__} cannot travel through Redis (request meta and items must be JSON data)")


def dumps(obj: Any) -> bytes:
    try:  # most items: str keys throughout, bytes only as values
        text = json.dumps(obj, default=_default, separators=(",", ":"), ensure_ascii=False)
    except TypeError:  # bytes keys (request headers), or something that is not data (refused by _plain)
        text = json.dumps(_plain(obj), separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def loads(data: bytes | str) -> Any:
    return json.loads(data, object_hook=_hook)

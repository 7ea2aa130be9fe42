"""Record values are protobuf messages, or their JSON mapping when the content-type header says so."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from tastemaker.messaging.ports import CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE

M = TypeVar("M", bound=Message)

#: Headers of a record whose value is a serialized protobuf message.
PROTOBUF_HEADERS = {CONTENT_TYPE_HEADER: PROTOBUF_CONTENT_TYPE.encode()}
#: Headers of a record whose value is the protobuf JSON mapping.
JSON_HEADERS = {CONTENT_TYPE_HEADER: JSON_CONTENT_TYPE.encode()}


class UndecodableRecord(ValueError):
    """The value is not the expected message in the encoding its headers name."""


def decode(value: bytes, headers: dict[str, bytes], message: M) -> M:
    """Parse `value` into `message` (protobuf unless the header says JSON); returns `message`."""
    content_type = headers.get(CONTENT_TYPE_HEADER, b"").decode("utf-8", "replace")
    try:
        if content_type == JSON_CONTENT_TYPE:
            json_format.Parse(value.decode("utf-8"), message)
        else:
            message.ParseFromString(value)
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as exc:
        kind = content_type or "protobuf"
        raise UndecodableRecord(f"undecodable {kind} {message.DESCRIPTOR.name}: {exc}") from exc
    return message

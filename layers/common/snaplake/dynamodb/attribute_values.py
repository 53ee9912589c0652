"""DynamoDB AttributeValues (`{"S": "x"}`, `{"N": "1.5"}`, ...) in plain Python.

The JSON text form defined here is the one the Parquet conversion writes for
lists (L), for maps cut at the depth limit and for attributes whose type
differs between items. It is canonical, so the same value always gives the
same text:

- S -> JSON string (non-ASCII kept as is, control characters escaped as
  `json.dumps(..., ensure_ascii=False)` does)
- N -> JSON number with the exact digits: the DynamoDB text when it is already
  a plain JSON number, otherwise its plain decimal form (`1E+2` -> `100`)
- B -> JSON string holding the base64 text
- BOOL -> `true`/`false`, NULL -> `null`
- SS/NS/BS -> JSON arrays, sorted (SS by code point, NS by value, BS by bytes)
- L -> JSON array in list order, M -> JSON object with keys sorted
- no spaces between tokens
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from snaplake.core.limits import DYNAMODB_MAX_NESTING_DEPTH
from snaplake.dynamodb.errors import InvalidAttributeValue

SCALAR_DESCRIPTORS = frozenset({"S", "N", "B", "BOOL", "NULL"})
SET_DESCRIPTORS = frozenset({"SS", "NS", "BS"})
DESCRIPTORS = SCALAR_DESCRIPTORS | SET_DESCRIPTORS | {"L", "M"}

# A DynamoDB number as it may be written; PLAIN_NUMBER_PATTERN is the plain
# JSON form (no exponent, no superfluous leading zeros) that every number is
# brought to before its digits are counted. The pattern is RE2-compatible so
# pyarrow.compute can use it too.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PLAIN = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
PLAIN_NUMBER_PATTERN = f"^{_PLAIN}$"
_PLAIN_NUMBER = re.compile(_PLAIN)
# DynamoDB numbers range over 1E-130 .. 9.99E+125; anything far outside is not
# a DynamoDB number and would expand into an absurdly long plain form.
_MAX_ADJUSTED_EXPONENT = 400
# DynamoDB's limit for maps and lists inside one another.
MAX_NESTING_DEPTH = DYNAMODB_MAX_NESTING_DEPTH


def canonical_number(text: str) -> str:
    """The plain JSON-number form of a DynamoDB number, digits kept exactly (`.5` -> `0.5`, `1.50E+1` -> `15.0`)."""
    if not isinstance(text, str):
        raise InvalidAttributeValue(f"{text!r} is not a DynamoDB number")
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    if not _NUMBER.fullmatch(text):
        raise InvalidAttributeValue(f"{text!r} is not a DynamoDB number")
    value = Decimal(text)
    if abs(value.adjusted()) > _MAX_ADJUSTED_EXPONENT:
        raise InvalidAttributeValue(f"{text!r} is outside the range of DynamoDB numbers")
    return format(value, "f")


def number_digits(text: str) -> tuple[int, int]:
    """(integer digits, scale) of a number as written: `-012.50` -> (2, 2); `0.5` -> (0, 1); `1E+2` -> (3, 0)."""
    plain = canonical_number(text).lstrip("-").lstrip("0")
    whole, dot, fraction = plain.partition(".")
    return len(whole), len(fraction) if dot else 0


def decode_binary(text: str) -> bytes:
    """Strict base64 decoding of a B value (or an element of a BS value)."""
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidAttributeValue(f"{text[:40]!r} is not base64") from None


def descriptor_of(value: Any, path: str = "") -> tuple[str, Any]:
    """The single (descriptor, payload) pair of an AttributeValue, checked."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise InvalidAttributeValue(f"{path or 'value'}: an AttributeValue has exactly one type descriptor, got {_short(value)}")
    ((descriptor, payload),) = value.items()
    if descriptor not in DESCRIPTORS:
        raise InvalidAttributeValue(f"{path or 'value'}: unknown type descriptor {descriptor!r}")
    return descriptor, payload


def check_attribute_value(value: Any, path: str = "") -> None:
    """Raise InvalidAttributeValue unless `value` is a well-formed AttributeValue (recursively)."""
    _check_nesting([value], path)
    _check_value(value, path)


def check_attributes(attributes: Any, path: str = "") -> None:
    """Raise InvalidAttributeValue unless `attributes` maps names to well-formed AttributeValues (an item, a map)."""
    if isinstance(attributes, Mapping):
        _check_nesting(attributes.values(), path)
    _check_attributes(attributes, path)


def nested_too_deep(*attribute_maps: Mapping[str, Any]) -> bool:
    """Whether maps and lists nest more than MAX_NESTING_DEPTH levels deep in any of these items (or maps).

    Iterative, so any depth is safe to check, and cheap enough for every stream batch: it follows
    only M and L containers and skips malformed values (check_attributes reports those).
    """
    return _too_deep([value for attributes in attribute_maps for value in attributes.values()])


def valid_unicode(text: str) -> bool:
    """False for a string that UTF-8 cannot encode, one with a lone surrogate: pyarrow and .encode() raise on it.

    JSON decoding gives one for the escape \\udcff, and surrogateescape for an undecodable byte.
    """
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _too_deep(values: Iterable[Any]) -> bool:
    # type() and `in` rather than isinstance() and .get(): this runs for every stream record.
    level = list(values)
    for _ in range(MAX_NESTING_DEPTH + 1):
        nested: list[Any] = []
        for value in level:
            if type(value) is dict:
                if "M" in value:
                    members = value["M"]
                    if type(members) is dict:
                        nested.extend(members.values())
                elif "L" in value:
                    elements = value["L"]
                    if type(elements) is list:
                        nested.extend(elements)
        if not nested:
            return False
        level = nested
    return True


def _check_nesting(values: Iterable[Any], path: str) -> None:
    if _too_deep(values):
        raise InvalidAttributeValue(f"{path or 'item'}: maps and lists nested more than {MAX_NESTING_DEPTH} levels deep")


def _check_value(value: Any, path: str) -> None:
    descriptor, payload = descriptor_of(value, path)
    where = path or "value"
    if descriptor in ("S", "B"):
        if not isinstance(payload, str):
            raise InvalidAttributeValue(f"{where}: {descriptor} must hold a string")
        if descriptor == "B":
            _checked(where, decode_binary, payload)
        elif not valid_unicode(payload):
            raise InvalidAttributeValue(f"{where}: S holds a string that is not valid Unicode (a lone surrogate)")
    elif descriptor == "N":
        if not isinstance(payload, str):
            raise InvalidAttributeValue(f"{where}: N must hold the number as a string")
        _checked(where, canonical_number, payload)
    elif descriptor in ("BOOL", "NULL"):
        if not isinstance(payload, bool):
            raise InvalidAttributeValue(f"{where}: {descriptor} must hold true or false")
    elif descriptor in SET_DESCRIPTORS:
        if not isinstance(payload, list) or not payload or not all(isinstance(member, str) for member in payload):
            raise InvalidAttributeValue(f"{where}: {descriptor} must hold a non-empty list of strings")
        for member in payload:
            if descriptor == "NS":
                _checked(where, canonical_number, member)
            elif descriptor == "BS":
                _checked(where, decode_binary, member)
            elif not valid_unicode(member):
                raise InvalidAttributeValue(f"{where}: SS holds a string that is not valid Unicode (a lone surrogate)")
    elif descriptor == "L":
        if not isinstance(payload, list):
            raise InvalidAttributeValue(f"{where}: L must hold a list")
        for index, element in enumerate(payload):
            _check_value(element, f"{where}[{index}]")
    else:  # M
        _check_attributes(payload, where)


def _checked(where: str, check: Callable[[str], Any], payload: str) -> None:
    try:
        check(payload)
    except InvalidAttributeValue as error:
        raise InvalidAttributeValue(f"{where}: {error}") from None


def _check_attributes(attributes: Any, path: str) -> None:
    if not isinstance(attributes, Mapping):
        raise InvalidAttributeValue(f"{path or 'item'}: expected an object of attributes, got {_short(attributes)}")
    for name, value in attributes.items():
        if isinstance(name, str) and not valid_unicode(name):
            # Checked before the name becomes part of a path: the messages end up in logs.
            raise InvalidAttributeValue(f"{path or 'item'}: attribute name {name!r} is not valid Unicode (a lone surrogate)")
        _check_value(value, f"{path}.{name}" if path else name)


def deserialize(value: Mapping[str, Any]) -> Any:
    """Plain Python value of an AttributeValue.

    S -> str, N -> Decimal (exact), B -> bytes, BOOL -> bool, NULL -> None,
    SS/NS/BS -> sorted lists (as in the JSON text), L -> list, M -> dict.
    """
    descriptor, payload = descriptor_of(value)
    if descriptor == "S":
        return payload
    if descriptor == "N":
        return Decimal(canonical_number(payload))
    if descriptor == "B":
        return decode_binary(payload)
    if descriptor == "BOOL":
        return bool(payload)
    if descriptor == "NULL":
        return None
    if descriptor == "SS":
        return sorted(payload)
    if descriptor == "NS":
        return sorted(Decimal(canonical_number(member)) for member in payload)
    if descriptor == "BS":
        return sorted(decode_binary(member) for member in payload)
    if descriptor == "L":
        return [deserialize(element) for element in payload]
    return {name: deserialize(child) for name, child in payload.items()}


def json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def attribute_json(value: Mapping[str, Any]) -> str:
    """The canonical JSON text of an AttributeValue (see the module docstring)."""
    descriptor, payload = descriptor_of(value)
    if descriptor in ("S", "B"):
        return json_string(payload)
    if descriptor == "N":
        return canonical_number(payload)
    if descriptor == "BOOL":
        return "true" if payload else "false"
    if descriptor == "NULL":
        return "null"
    if descriptor == "SS":
        return "[" + ",".join(json_string(member) for member in sorted(payload)) + "]"
    if descriptor == "NS":
        numbers = sorted((canonical_number(member) for member in payload), key=Decimal)
        return "[" + ",".join(numbers) + "]"
    if descriptor == "BS":
        return "[" + ",".join(json_string(member) for member in sorted(payload, key=decode_binary)) + "]"
    if descriptor == "L":
        return "[" + ",".join(attribute_json(element) for element in payload) + "]"
    members = (json_string(name) + ":" + attribute_json(payload[name]) for name in sorted(payload))
    return "{" + ",".join(members) + "}"


def serialize_binary(data: bytes) -> dict[str, str]:
    """A B AttributeValue for `data` (as DynamoDB JSON writes it)."""
    return {"B": base64.b64encode(data).decode("ascii")}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

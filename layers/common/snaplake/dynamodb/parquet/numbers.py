"""The numbers of one attribute path: what their column needs (int64, or the decimal's scale and integer digits:
NumberStats, learned by `number_stats`) and their plain JSON form (`canonical_numbers`), with pyarrow.compute."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from snaplake.dynamodb.attribute_values import PLAIN_NUMBER_PATTERN, canonical_number
from snaplake.dynamodb.errors import InvalidAttributeValue
from snaplake.dynamodb.parquet.options import INT64_DIGITS, MAX_DECIMAL_DIGITS, ConvertOptions


@dataclass(frozen=True)
class NumberStats:
    """What the N values (or NS members) of one path need: int64 or the decimal's scale and integer digits."""

    int64: bool
    max_scale: int
    max_int_digits: int

    def merged(self, other: NumberStats | None) -> NumberStats:
        if other is None:
            return self
        return NumberStats(
            int64=self.int64 and other.int64,
            max_scale=max(self.max_scale, other.max_scale),
            max_int_digits=max(self.max_int_digits, other.max_int_digits),
        )

    def arrow_type(self, options: ConvertOptions) -> pa.DataType:
        if self.int64:
            return pa.int64()
        if options.float_numbers:
            return pa.float64()
        if self.max_int_digits + self.max_scale <= MAX_DECIMAL_DIGITS:
            return pa.decimal128(MAX_DECIMAL_DIGITS, self.max_scale)
        return pa.string()

    def to_json(self) -> dict[str, Any]:
        return {"int64": self.int64, "max_scale": self.max_scale, "max_int_digits": self.max_int_digits}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> NumberStats:
        return cls(bool(raw["int64"]), int(raw["max_scale"]), int(raw["max_int_digits"]))


def merged_stats(a: NumberStats | None, b: NumberStats | None) -> NumberStats | None:
    return b if a is None else a.merged(b)


def number_stats(texts: pa.Array, path: str) -> NumberStats | None:
    values = pc.drop_null(texts)
    if len(values) == 0:
        return None
    integers = _plain_integers(values)
    if integers is not None:
        low, high = pc.min_max(integers).as_py().values()
        return NumberStats(True, 0, max(len(str(abs(low))) if low else 0, len(str(abs(high))) if high else 0))
    try:
        values = canonical_numbers(values)
    except InvalidAttributeValue as error:
        raise InvalidAttributeValue(f"{path}: {error}") from None
    trimmed = pc.ascii_ltrim(values, characters="-0")
    dot = pc.find_substring(trimmed, ".")
    length = pc.binary_length(trimmed)
    has_dot = pc.greater_equal(dot, 0)
    int_digits = pc.if_else(has_dot, dot, length)
    scale = pc.if_else(has_dot, pc.subtract(pc.subtract(length, dot), 1), 0)
    max_scale = pc.max(scale).as_py()
    max_int_digits = pc.max(int_digits).as_py()
    int64 = max_scale == 0 and max_int_digits <= INT64_DIGITS
    if int64 and max_int_digits == INT64_DIGITS:
        longest = pc.filter(values, pc.equal(int_digits, INT64_DIGITS)).to_pylist()
        int64 = all(-(2**63) <= int(text) < 2**63 for text in longest)
    return NumberStats(int64, max_scale, max_int_digits)


def _plain_integers(texts: pa.Array) -> pa.Array | None:
    """The texts as int64 when every one is an integer in plain form (what int64's own text gives back), else None.

    Several times cheaper than matching PLAIN_NUMBER_PATTERN (pyarrow compiles a regex per call). The round trip
    refuses what the cast alone would take: leading zeros, `-0`, hexadecimal (`0x10`). Texts with a decimal point are
    not tried: a failing cast costs as much as a dozen successful ones.
    """
    if pc.any(pc.match_substring(texts, ".")).as_py():
        return None
    try:
        integers = pc.cast(texts, pa.int64())
    except pa.ArrowInvalid:
        return None
    return integers if pc.all(pc.equal(pc.cast(integers, pa.string()), texts)).as_py() is not False else None


def canonical_numbers(texts: pa.Array) -> pa.Array:
    """Number texts in plain JSON form (the common case passes through untouched)."""
    if _plain_integers(texts) is not None:
        return texts
    plain = pc.match_substring_regex(texts, PLAIN_NUMBER_PATTERN)
    if pc.all(plain).as_py() is not False:
        return texts
    fixed = [text if text is None or ok else canonical_number(text) for text, ok in zip(texts.to_pylist(), plain.to_pylist(), strict=True)]
    return pa.array(fixed, pa.string())

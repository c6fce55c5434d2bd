"""A placement's business rules on catalogue fields: what they may say, how they read as JSON and as a line of
text (the admin form), every problem named. Evaluated at serve time by backend/serving/controls.py.

A rule keeps the items that pass it (an item failing any rule is never recommended):

- ``{"field": "category", "op": "in", "values": ["shoes", "boots"]}`` / ``"op": "not_in"``
  (text: ``category in shoes, boots`` / ``category not in gifts``); an item without a category fails ``in`` and
  passes ``not_in``;
- ``{"field": "price", "op": "between", "min": 10, "max": 100}`` (text: ``price between 10 and 100``,
  ``price >= 10``, ``price <= 100``); an item without a price fails it;
- ``{"field": "price", "op": "relative", "min": 0.5, "max": 2}``: relative to the page item's price
  (text: ``price between 0.5x and 2x``); on a page without an item or whose item has no price it keeps every item;
- ``{"field": "attribute", "name": "color", "op": "equals", "value": "red"}`` (text: ``attribute color = red``):
  the item's ``attributes[name]`` equals the value (compared as text: ``1`` equals ``1.0``, ``true`` equals
  ``True``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

MAX_RULES = 20
MAX_VALUES = 100
VALUE_MAX = 256            # a category's length in the catalogue
ATTRIBUTE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
OPS = {"category": ("in", "not_in"), "price": ("between", "relative"), "attribute": ("equals",)}
SYNTAX = ("category in A, B | category not in A, B | price between 10 and 100 | price >= 10 | price <= 100 | "
          "price between 0.5x and 2x (relative to the page item) | attribute NAME = VALUE")


class RuleError(ValueError):
    """A rule is not valid; the message says why."""


def as_text(value) -> str:
    """The text an attribute value is compared as."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{float(value):g}" if math.isfinite(value) else str(value)
    return str(value)


@dataclass(frozen=True)
class Rule:
    field: str
    op: str
    values: tuple[str, ...] = ()        # category in / not in
    min: float | None = None            # price (absolute, or a factor of the page item's price)
    max: float | None = None
    name: str = ""                      # attribute
    value: str = ""

    def as_json(self) -> dict:
        if self.field == "category":
            return {"field": "category", "op": self.op, "values": list(self.values)}
        if self.field == "price":
            return {"field": "price", "op": self.op, "min": self.min, "max": self.max}
        return {"field": "attribute", "name": self.name, "op": "equals", "value": self.value}

    def text(self) -> str:
        if self.field == "category":
            return f"category {'in' if self.op == 'in' else 'not in'} {', '.join(self.values)}"
        if self.field == "price":
            x = "x" if self.op == "relative" else ""
            if self.min is not None and self.max is not None:
                return f"price between {self.min:g}{x} and {self.max:g}{x}"
            return f"price >= {self.min:g}{x}" if self.min is not None else f"price <= {self.max:g}{x}"
        return f"attribute {self.name} = {self.value}"

    def passes(self, category: str | None, price: float | None, attributes: dict | None,
               page_price: float | None) -> bool:
        """Whether one item passes (the reference the vectorised masks of serving are tested against)."""
        if self.field == "category":
            return (category in self.values) if self.op == "in" else (category not in self.values)
        if self.field == "price":
            scale = 1.0
            if self.op == "relative":
                if page_price is None or page_price <= 0:
                    return True
                scale = page_price
            if price is None:
                return False
            return ((self.min is None or price >= self.min * scale) and
                    (self.max is None or price <= self.max * scale))
        attrs = attributes or {}
        return self.name in attrs and as_text(attrs[self.name]) == self.value


def _number(v, what: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise RuleError(f"{what} must be a number of at least 0")
    return float(v)


def rule_from_json(d) -> Rule:
    if not isinstance(d, dict):
        raise RuleError("a rule is an object with field and op")
    field, op = d.get("field"), d.get("op")
    if field not in OPS:
        raise RuleError(f"field must be one of {', '.join(OPS)}")
    if op not in OPS[field]:
        raise RuleError(f"{field}: op must be one of {', '.join(OPS[field])}")
    allowed = {"category": {"values"}, "price": {"min", "max"}, "attribute": {"name", "value"}}[field]
    extra = sorted(set(d) - allowed - {"field", "op"})
    if extra:
        raise RuleError(f"{field} {op}: unknown key(s) {', '.join(map(str, extra))}")
    if field == "category":
        values = d.get("values")
        if not isinstance(values, list) or not values or len(values) > MAX_VALUES:
            raise RuleError(f"category {op}: values is a list of 1-{MAX_VALUES} categories")
        if not all(isinstance(v, str) and 0 < len(v.strip()) <= VALUE_MAX for v in values):
            raise RuleError(f"category {op}: each category is text of 1-{VALUE_MAX} characters")
        return Rule("category", op, values=tuple(dict.fromkeys(v.strip() for v in values)))
    if field == "price":
        lo, hi = _number(d.get("min"), f"price {op}: min"), _number(d.get("max"), f"price {op}: max")
        if lo is None and hi is None:
            raise RuleError(f"price {op}: give min, max or both")
        if lo is not None and hi is not None and lo > hi:
            raise RuleError(f"price {op}: min ({lo:g}) is above max ({hi:g})")
        if op == "relative" and hi is not None and hi == 0:
            raise RuleError("price relative: max must be above 0 (a factor of the page item's price)")
        return Rule("price", op, min=lo, max=hi)
    name, value = d.get("name"), d.get("value")
    if not isinstance(name, str) or not ATTRIBUTE_RE.match(name):
        raise RuleError("attribute: name is 1-64 of A-Z a-z 0-9 _ . : -")
    if isinstance(value, (dict, list)) or value is None or len(as_text(value)) > VALUE_MAX:
        raise RuleError(f"attribute {name}: value is text, a number or true/false, at most {VALUE_MAX} characters")
    return Rule("attribute", "equals", name=name, value=as_text(value))


_PRICE_NUMBER = r"(\d+(?:\.\d+)?)(x?)"


def rule_from_text(line: str) -> Rule:
    """A rule from its line of text (the admin form); RuleError names the expected syntax."""
    text = " ".join(line.split())
    low = text.lower()
    try:
        for prefix, op in (("category not in ", "not_in"), ("category in ", "in")):
            if low.startswith(prefix):
                return rule_from_json({"field": "category", "op": op,
                                       "values": [v for v in text[len(prefix):].split(",") if v.strip()]})
        m = re.fullmatch(rf"price between {_PRICE_NUMBER} and {_PRICE_NUMBER}", low)
        if m:
            if m[2] != m[4]:
                raise RuleError("price between: both bounds absolute (10 and 100) or both relative (0.5x and 2x)")
            return rule_from_json({"field": "price", "op": "relative" if m[2] else "between",
                                   "min": float(m[1]), "max": float(m[3])})
        m = re.fullmatch(rf"price (>=|<=) {_PRICE_NUMBER}", low)
        if m:
            bound = "min" if m[1] == ">=" else "max"
            return rule_from_json({"field": "price", "op": "relative" if m[3] else "between", bound: float(m[2])})
        m = re.fullmatch(r"attribute (\S+) = (.+)", text, flags=re.IGNORECASE)
        if m:
            return rule_from_json({"field": "attribute", "op": "equals", "name": m[1], "value": m[2].strip()})
    except RuleError as exc:
        raise RuleError(f"{text[:80]!r}: {exc}") from None
    raise RuleError(f"{text[:80]!r}: not a rule; write one of: {SYNTAX}")

"""The parameters a built-in model takes, with their bounds: each model's ``PARAMS``, checked by make_model.

A project's owner sets ``model_params``, and the single retrain worker runs what they say: ``max_epochs`` of
1e9 or ``hidden: [200000, 200000]`` would hold it for every project until the timeout (or exhaust memory).
So every parameter of a built-in has a type and a range wide enough for any real use; anything else is a
400 at configuration, and a stored project beyond them (from before the bounds) fails its retrain at once
with the same message instead of running. A model named by import path brings its own checks: it is the
operator's code.
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass


class ParamError(ValueError):
    """A parameter outside its model's schema; the message names it and what it takes."""


@dataclass(frozen=True)
class Param:
    kind: str  # "int", "number", "bool", "choice" (only the choices), "ints" (a list of ints), "object"
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False
    choices: tuple = ()  # allowed strings (or booleans) besides the kind's values, e.g. "auto"
    nullable: bool = False
    max_len: int | None = None  # for "ints"

    def describe(self) -> str:
        parts = []
        if self.kind in ("int", "number", "ints"):
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            what = {"int": "an integer", "number": "a number", "ints": f"a list of 1 to {self.max_len} integers"}
            high = "any size" if self.high >= 1e300 else f"{self.high:g}"
            parts.append(f"{what[self.kind]} in {left}{self.low:g}, {high}{right}")
        elif self.kind == "bool":
            parts.append("true or false")
        elif self.kind == "object":
            parts.append("an estimator object (from Python code; not settable as JSON)")
        parts += [json.dumps(c) for c in self.choices]  # as a project's JSON writes them
        if self.nullable:
            parts.append("null")
        return " or ".join(parts)

    def _in_range(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def ok(self, value) -> bool:
        if value is None:
            return self.nullable
        if isinstance(value, (str, bool)) and value in self.choices and type(value) in {type(c) for c in self.choices}:
            return True
        if self.kind == "int":
            return isinstance(value, numbers.Integral) and self._in_range(value)
        if self.kind == "number":
            return self._in_range(value)
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "ints":
            return (isinstance(value, (list, tuple)) and 1 <= len(value) <= self.max_len
                    and all(isinstance(v, numbers.Integral) and self._in_range(v) for v in value))
        if self.kind == "object":
            return not isinstance(value, (str, numbers.Number, list, tuple, dict))
        return False


SEED = Param("int", 0, 2**63 - 1, nullable=True)  # random_state: a seed or null (a Generator from Python code)


def check_params(schema: dict[str, Param], params: dict, origin: str) -> None:
    """Raise ParamError naming the first parameter ``schema`` does not know or whose value it refuses."""
    for name, value in params.items():
        spec = schema.get(name)
        if spec is None:
            raise ParamError(f"{origin} has no parameter {name!r}; it takes {', '.join(sorted(schema))}")
        if name == "random_state" and value is not None and not isinstance(value, (numbers.Number, str, list, dict)):
            continue  # a numpy Generator, from Python code
        if not spec.ok(value):
            raise ParamError(f"{origin}: {name} must be {spec.describe()}, got {value!r}")

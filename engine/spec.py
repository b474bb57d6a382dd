"""Spec strings: one run of one optimizer written as ``name(key=value, ...)``.

``adam(lr=0.2,beta1=0.9,beta2=0.999,eps=1e-6)`` parses into a :class:`RunSpec` and prints
back identically: the keys the user gave, in the order given, each value written as typed.
Values are numbers, ``true``/``false``, a name from a fixed list (``schedule=cosine``), or
another spec (``sam(base=adam(lr=0.05),rho=0.05)``).
Unknown names, unknown, repeated or missing keys and out-of-range values raise a
``ValueError`` that names the valid choices. The parser is a small hand-written scanner:
nothing the user types is ever evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engine.optimizers import build_optimizer, format_value, get_optimizer_spec

MAX_SPEC_LENGTH = 2000
MAX_NESTING = 8

# ASCII only: \d would also accept other scripts' digits, which float() then reads.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLS = {"true": True, "false": False}


@dataclass(frozen=True)
class RunSpec:
    """A validated optimizer spec: its name and the (key, text, value) triples given."""

    name: str
    args: tuple[tuple[str, str, Any], ...] = ()

    def __str__(self) -> str:
        inner = ",".join(f"{k}={text}" for k, text, _ in self.args)
        return f"{self.name}({inner})"

    @property
    def spec(self):
        return get_optimizer_spec(self.name)

    @property
    def given(self) -> dict[str, Any]:
        """Only the values written in the spec string."""
        return {k: v for k, _, v in self.args}

    def resolved(self) -> dict[str, Any]:
        """Every hyperparameter's value: the given ones, defaults for the rest."""
        values = self.spec.defaults()
        values.update(self.given)
        return values

    def get(self, key: str) -> Any:
        return self.resolved()[key]

    def with_values(self, **changes: Any) -> RunSpec:
        """A copy with some values changed (validated); other keys keep their text."""
        spec = self.spec
        args = list(self.args)
        for key, value in changes.items():
            value = spec.hyper(key).validate(value, self.name)
            text = format_value(value)
            for i, (k, _, _) in enumerate(args):
                if k == key:
                    args[i] = (key, text, value)
                    break
            else:
                args.append((key, text, value))
        order = {h.name: i for i, h in enumerate(spec.all_hypers)}
        # keys not given before are placed in the spec's canonical order
        given_before = {k for k, _, _ in self.args}
        old = [a for a in args if a[0] in given_before]
        new = sorted((a for a in args if a[0] not in given_before), key=lambda a: order[a[0]])
        result = RunSpec(self.name, tuple(old + new))
        _check_combination(result)
        return result

    def without(self, key: str) -> RunSpec:
        """A copy where ``key`` is back to its default (removed from the string)."""
        return RunSpec(self.name, tuple(a for a in self.args if a[0] != key))


def canonical(name: str, **values: Any) -> RunSpec:
    """Build a spec from Python values, keys in the optimizer's canonical order."""
    return RunSpec(name).with_values(**values) if values else _validated(RunSpec(name))


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, message: str) -> ValueError:
        pointer = f" at position {self.pos + 1}" if self.pos < len(self.text) else " at the end"
        return ValueError(f"bad optimizer spec {self.text!r}: {message}{pointer}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            found = repr(self.peek()) if self.peek() else "nothing"
            raise self.error(f"expected {ch!r}, found {found}")
        self.pos += 1

    def name(self, what: str) -> str:
        self.skip_ws()
        m = _NAME.match(self.text, self.pos)
        if not m:
            raise self.error(f"expected {what}")
        self.pos = m.end()
        return m.group(0)

    def spec(self, depth: int = 0) -> RunSpec:
        if depth > MAX_NESTING:
            raise self.error("specs nested too deeply")
        start = self.pos
        name = self.name("an optimizer name")
        try:
            opt = get_optimizer_spec(name)
        except ValueError as exc:
            self.pos = start
            raise ValueError(f"bad optimizer spec {self.text!r}: {exc}") from None
        args: list[tuple[str, str, Any]] = []
        if self.peek() == "(":
            self.pos += 1
            if self.peek() == ")":
                self.pos += 1
            else:
                while True:
                    key = self.name("a hyperparameter name")
                    try:
                        hyper = opt.hyper(key)
                    except ValueError as exc:
                        raise ValueError(f"bad optimizer spec {self.text!r}: {exc}") from None
                    if any(k == key for k, _, _ in args):
                        raise self.error(f"{key} given twice")
                    self.expect("=")
                    text, value = self.value(hyper, depth)
                    try:
                        value = hyper.validate(value, name)
                    except ValueError as exc:
                        raise ValueError(f"bad optimizer spec {self.text!r}: {exc}") from None
                    args.append((key, text, value))
                    if self.peek() == ",":
                        self.pos += 1
                        continue
                    self.expect(")")
                    break
        return _validated(RunSpec(name, tuple(args)))

    def value(self, hyper, depth: int) -> tuple[str, Any]:
        self.skip_ws()
        if hyper.kind == "spec":
            inner = self.spec(depth + 1)
            return str(inner), inner
        if hyper.kind == "choice":
            m = _NAME.match(self.text, self.pos)
            if not m:
                raise self.error(f"expected a value for {hyper.name} ({hyper.range_text()})")
            self.pos = m.end()
            return m.group(0), m.group(0)
        m = _NUMBER.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            text = m.group(0)
            value: Any = int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else float(text)
            return text, value
        m = _NAME.match(self.text, self.pos)
        if m and m.group(0).lower() in _BOOLS:
            self.pos = m.end()
            return m.group(0), _BOOLS[m.group(0).lower()]
        raise self.error(f"expected a value for {hyper.name} ({hyper.range_text()})")


def _check_combination(run: RunSpec) -> None:
    """Constraints between hyperparameters (e.g. Nesterov needs momentum)."""
    try:
        build_optimizer(run)
    except ValueError as exc:
        raise ValueError(f"bad optimizer spec {str(run)!r}: {exc}") from None


def _validated(run: RunSpec) -> RunSpec:
    missing = [h.name for h in run.spec.all_hypers if h.required and h.name not in run.given]
    if missing:
        raise ValueError(
            f"bad optimizer spec {str(run)!r}: missing {', '.join(missing)} "
            f"({'; '.join(run.spec.hyper(m).range_text() for m in missing)})"
        )
    _check_combination(run)
    return run


def parse_spec(text: str) -> RunSpec:
    """Parse ``name(key=value, ...)``; a ValueError explains any problem."""
    if not isinstance(text, str):
        raise ValueError(f"an optimizer spec must be text, got {type(text).__name__}")
    if len(text) > MAX_SPEC_LENGTH:
        raise ValueError(f"optimizer spec is too long ({len(text)} characters)")
    if not text.strip():
        raise ValueError("empty optimizer spec; write e.g. adam(lr=0.01)")
    parser = _Parser(text)
    run = parser.spec()
    if parser.peek():
        raise parser.error(f"unexpected {parser.peek()!r} after the spec")
    return run

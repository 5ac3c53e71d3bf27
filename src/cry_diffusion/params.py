"""One way between a config section and a settings dataclass.

Each stage's settings are a dataclass whose defaults sit beside their knobs. The workflow's
schema (workflow/schemas/config.schema.yaml) fills the same defaults into a config, and
tests/test_params.py holds every shared default equal, so the two can't drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, fields


class Params:
    """Base of the settings dataclasses: `from_dict` takes a config section, `to_dict` gives one back."""

    @classmethod
    def from_dict(cls, d: dict, **overrides):
        """The fields found in `d` (other keys are another stage's business), then `overrides`.

        Lists become tuples where the default is a tuple (frozen params stay hashable), their
        items typed as the default's (1 and 1.0 make one schedule, and one run key).
        """
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d} | overrides
        for f in fields(cls):
            if isinstance(f.default, tuple) and f.name in kw:
                kind = type(f.default[0]) if f.default else (lambda v: v)
                kw[f.name] = tuple(kind(v) for v in kw[f.name])
        return cls(**kw)

    def to_dict(self) -> dict:
        """Plain types (tuples as lists), as a config file or a weights-only checkpoint holds them."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def add_arguments(parser, cls, prefix: str = "") -> None:
    """One command-line option per field of `cls` (`--prefix-field-name`), its default the field's."""
    for f in fields(cls):
        many = isinstance(f.default, tuple)
        parser.add_argument(f"--{prefix}{f.name.replace('_', '-')}", type=float if many else type(f.default),
                            default=f.default, nargs="+" if many else None, dest=prefix.replace("-", "_") + f.name)

"""How the report writes a number: a measure with its interval, a FAD's reliability, a distinct fraction.

    from cry_diffusion.report_format import fmt, with_interval
    with_interval({"value": 0.12, "low": 0.1, "high": 0.15}, ".2f")   # '0.12 [0.10, 0.15]'
"""

from __future__ import annotations


def fmt(value, spec: str = ".3g") -> str:
    return "n/a" if value is None else format(value, spec)


def with_interval(d: dict | None, spec: str = ".3g") -> str:
    """{'value', 'low', 'high'} -> 'value [low, high]'."""
    if not d or d.get("value") is None:
        return "n/a"
    return f"{d['value']:{spec}} [{fmt(d['low'], spec)}, {fmt(d['high'], spec)}]"


def fad_text(d: dict | None, spec: str = ".3g") -> str:
    """A FAD as 'value [low, high]', with a dagger where too few clips per dimension let no interval cover (distances.fad)."""
    text = with_interval(d, spec)
    return text + " \u2020" if d and d.get("value") is not None and not d.get("reliable", True) else text


def distinct_text(d: dict | None) -> str:
    """A distinct fraction as 'value [low, high]; real low-high', and whether it falls below real sets' range."""
    if not d or d.get("value") is None:
        return "n/a"
    real = d.get("real") or {}
    text = f"{with_interval(d, '.2f')}; real {fmt(real.get('low'), '.2f')}-{fmt(real.get('high'), '.2f')}"
    return text + " (below real)" if d.get("below_real") else text

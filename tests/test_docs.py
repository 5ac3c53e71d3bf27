"""The docs against the code they describe: docs/configuration.md's Layout names every library module and rules file.

    pytest tests/test_docs.py
"""

import re

from conftest import REPO


def layout() -> str:
    text = (REPO / "docs" / "configuration.md").read_text()
    return text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def test_the_layout_names_every_library_module_and_rules_file():
    named = set(re.findall(r"`([\w/]+)`", layout()))
    modules = {p.stem for p in (REPO / "src" / "cry_diffusion").glob("*.py")} - {"__init__"}
    rules = {p.stem for p in (REPO / "workflow" / "rules").glob("*.smk")} - {"common", "inputs", "locks"}
    assert modules - named == set(), "modules the Layout doesn't name"
    assert rules - named == set(), "rules files the Layout doesn't name"
    assert {"common.smk", "inputs.smk", "locks.smk"} <= set(re.findall(r"`(\w+\.smk)`", layout()))

"""Short hashes in a rule's params for what Snakemake can't see change: the library code its script runs, and
a user's corpus files (workflow/rules/common.smk passes them as each rule's `code` and ingest's `listing`).

Snakemake reruns a rule when its params change, not when the code its script imports does. So each
rule gets a hash of every library module its script reaches, found by following the imports (no
hand-kept list to miss one): a library edit reruns the rules that run it and what follows them, and
nothing else. The hash is of the modules' syntax trees without docstrings, so editing a comment, a
docstring or the layout reruns nothing.

    from cry_diffusion import rerun_keys
    rerun_keys.code_hash(Path("workflow/scripts/train.py"), Path("src/cry_diffusion"))  # 16 hex digits
    rerun_keys.library_modules(Path("workflow/scripts/train.py"), Path("src/cry_diffusion"))  # [.../__init__.py, ...]
    rerun_keys.corpus_listing(config["datasets"]["phone"])  # 16 hex digits, new when a file is added or edited
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from .annotations import TableFormat, read_table
from .atomic import write_text
from .workflow_config import listing_path

PACKAGE = "cry_diffusion"

# Modules that change what a job prints, never what it makes: editing them reruns nothing.
NOT_HASHED = {"console"}


@functools.cache
def _parsed(text: str, filename: str, in_package: bool) -> tuple[frozenset[str], str]:
    """The names of the library modules a file's code imports (inside functions too), and its code without
    docstrings or line numbers. Cached by the text itself: a parse reaches most modules from many rules'
    scripts, and an edited file is parsed anew."""
    tree = ast.parse(text, filename)
    names = {"__init__"}  # importing any module runs the package's __init__
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level and in_package or (node.module or "").startswith(PACKAGE)):
            base = (node.module or "") if node.level else (node.module or "").removeprefix(PACKAGE).lstrip(".")
            names.update([base.split(".")[0]] if base else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith(f"{PACKAGE}."))
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            node.body = body[1:] or [ast.Pass()]
    return frozenset(names - NOT_HASHED), ast.dump(tree)


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str)


def _module(path: Path, library: Path) -> tuple[list[Path], str]:
    """One file's direct imports, as the library's module files, and its code as _parsed gives it."""
    names, code = _parsed(path.read_text(), str(path), path.parent == library)
    return [source for source in (library / f"{name}.py" for name in sorted(names)) if source.is_file()], code


def library_modules(script: Path, library: Path) -> list[Path]:
    """The modules of `library` (the package's folder) that `script` reaches, following imports all the way."""
    seen, todo = set(), [script]
    while todo:
        for source in _module(todo.pop(), library)[0]:
            if source not in seen:
                seen.add(source)
                todo.append(source)
    return sorted(seen)


def code_hash(script: Path, library: Path, files: Iterable[str] = (), cache: Path | None = None) -> str:
    """Hash of the library code `script` runs (library_modules), plus other package files it reads (templates,
    by their path inside `library`): editing any of it reruns the rule and what follows, and nothing else.

    cache: a JSON file that keeps the hashes by the bytes of the script, of every module of the library and of
    `files`. Parsing the library was a fifth of the time Snakemake takes to read the workflow, which it does
    at every command and twice for every cluster job; with the code unchanged, a hash is read instead. Any edit
    misses, and the file then keeps only the hashes of the code as it now is.
    """
    files = tuple(files)
    if cache is None:
        return _code_hash(script, library, files)
    read = hashlib.sha256(script.read_bytes())
    for name in files:
        read.update(f"\0{name}\0".encode() + (library / name).read_bytes())
    state = _library_state(library)
    key, stored = f"{script.name} {read.hexdigest()[:16]}", _stored(cache, state)
    if key not in stored:
        for stale in [k for k in stored if k.split(" ")[0] == script.name]:  # the script as it was
            del stored[stale]
        stored[key] = _code_hash(script, library, files)
        with contextlib.suppress(OSError):  # a folder we may not write to: the hash is still right, only not kept
            write_text(cache, json.dumps({"library": state, "hashes": stored}, indent=0, sort_keys=True))
    return stored[key]


def _library_state(library: Path) -> str:
    """A hash of every module's bytes (a few milliseconds: read at every call, so an edit is never missed)."""
    digest = hashlib.sha256()
    for source in sorted(library.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def _stored(cache: Path, state: str) -> dict[str, str]:
    """The cache's hashes, where they were made from this state of the library (an unreadable file keeps none);
    read once per state, and added to as hashes are made."""
    try:
        kept = json.loads(cache.read_text())
        return {str(k): str(v) for k, v in kept["hashes"].items()} if kept["library"] == state else {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):  # none there, cut short, or not ours
        return {}


def _code_hash(script: Path, library: Path, files: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for source in library_modules(script, library):
        digest.update(f"{source.name}\0{_module(source, library)[1]}\0".encode())
    for name in files:
        digest.update((library / name).read_bytes())
    return digest.hexdigest()[:16]


def corpus_listing(ds: dict) -> str:
    """Names, sizes and times of a dataset's corpus files, as a hash: adding or editing one reruns ingest.

    For a listing (kind manifest), the files it names, wherever they are; otherwise every file under the root.
    """
    if ds["kind"] == "manifest":
        listing = read_table(listing_path(ds), TableFormat(ds["columns"], ds["time_unit"], ds["sep"]), ["path"])
        files = sorted({os.path.join(ds["root"], r["path"]) for r in listing if r["path"]})
    else:
        files = [os.path.join(folder, name) for folder, dirs, names in sorted(os.walk(ds["root"])) for name in sorted(names)]
    digest = hashlib.sha256()
    for path in files:
        st = os.stat(path, follow_symlinks=False) if os.path.lexists(path) else None
        digest.update(f"{path}\0{st and st.st_size}\0{st and st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]

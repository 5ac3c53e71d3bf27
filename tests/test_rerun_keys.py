"""The hashes that rerun a rule for what Snakemake can't see change: the library code its script runs, a corpus's files.

A small fake library in a temporary folder stands in for src/cry_diffusion: each test edits one file
of it and says whether the script's hash must move. tests/test_workflow.py checks the same on the
real workflow, through whole runs.
"""

import json
import os
import textwrap

import pytest

from cry_diffusion import rerun_keys
from cry_diffusion.rerun_keys import code_hash, corpus_listing, library_modules

FILES = {
    "__init__.py": '"""The package."""\nSAMPLE_RATE = 16_000\n',
    "a.py": '"""Module a: imports b relatively."""\nfrom .b import LIMIT\n\n\ndef twice(x):\n    # why: b caps it\n    return min(2 * x, LIMIT)\n',
    "b.py": '"""Module b: a constant, and c imported inside a function."""\nLIMIT = 10\n\n\ndef later():\n    """Imports late."""\n    from cry_diffusion import c\n\n    return c.VALUE\n',
    "c.py": "VALUE = 1\n",
    "console.py": 'INTERVAL = 30.0  # seconds between progress lines\n',
    "unused.py": "NOTHING = None\n",
}
SCRIPT = "from cry_diffusion import a\nfrom cry_diffusion.console import INTERVAL\n\nprint(a.twice(3), INTERVAL)\n"


@pytest.fixture
def tree(tmp_path):
    """(script, library): a workflow script and the fake library it imports."""
    library = tmp_path / "src" / "cry_diffusion"
    library.mkdir(parents=True)
    for name, text in FILES.items():
        (library / name).write_text(text)
    (library / "templates").mkdir()
    (library / "templates" / "page.html.j2").write_text("<p>{{ x }}</p>\n")
    script = tmp_path / "workflow" / "scripts" / "stage.py"
    script.parent.mkdir(parents=True)
    script.write_text(SCRIPT)
    return script, library


def edit(path, old, new):
    text = path.read_text()
    assert old in text, (old, path)
    path.write_text(text.replace(old, new, 1))


def test_imports_are_followed_all_the_way_and_console_is_left_out(tree):
    script, library = tree
    # a directly; b through a's relative import; c through an import inside b's function; never console or unused
    assert [p.name for p in library_modules(script, library)] == ["__init__.py", "a.py", "b.py", "c.py"]


def test_an_import_added_to_a_script_adds_its_module_and_changes_the_hash(tree):
    script, library = tree
    before = code_hash(script, library)
    script.write_text(SCRIPT + "\n\ndef extra():\n    import cry_diffusion.unused\n")
    assert "unused.py" in [p.name for p in library_modules(script, library)]
    assert code_hash(script, library) != before


@pytest.mark.parametrize("path, old, new", [
    ("a.py", "# why: b caps it", "# the cap is b's"),  # a comment
    ("a.py", '"""Module a: imports b relatively."""', '"""Module a, which imports b."""'),  # a module docstring
    ("b.py", '"""Imports late."""', '"""Imports c only when called."""'),  # a function's docstring
    ("b.py", "LIMIT = 10\n", "LIMIT = (\n    10\n)\n"),  # the layout
    ("console.py", "INTERVAL = 30.0", "INTERVAL = 10.0"),  # what a job prints, not what it makes
])  # fmt: skip
def test_what_changes_no_result_leaves_the_hash(tree, path, old, new):
    script, library = tree
    before = code_hash(script, library)
    edit(library / path, old, new)
    assert code_hash(script, library) == before


@pytest.mark.parametrize("path, old, new", [
    ("b.py", "LIMIT = 10", "LIMIT = 11"),  # a constant of a module the script reaches through another
    ("c.py", "VALUE = 1", "VALUE = 2"),  # two imports away, the second inside a function
    ("__init__.py", "16_000", "22_050"),  # the package's __init__, which every import runs
    ("a.py", "min(2 * x, LIMIT)", "min(3 * x, LIMIT)"),  # a line of code
])  # fmt: skip
def test_what_changes_a_result_changes_the_hash(tree, path, old, new):
    script, library = tree
    before = code_hash(script, library)
    edit(library / path, old, new)
    assert code_hash(script, library) != before


def test_a_module_no_script_reaches_changes_nothing(tree):
    script, library = tree
    before = code_hash(script, library)
    edit(library / "unused.py", "None", "0")
    assert code_hash(script, library) == before


def test_package_files_a_rule_reads_are_hashed_byte_for_byte(tree):
    script, library = tree
    before = code_hash(script, library, ["templates/page.html.j2"])
    assert before != code_hash(script, library)
    edit(library / "templates" / "page.html.j2", "<p>", "<p class=x>")
    assert code_hash(script, library, ["templates/page.html.j2"]) != before


def test_a_kept_hash_is_read_until_any_code_it_could_reach_changes(tree, tmp_path):
    """The cache (what a Snakemake command reads instead of parsing the library again) is keyed by every byte the
    hash could depend on: a module edit, a script edit or a template edit each makes a new one, equal to a fresh hash."""
    script, library = tree
    cache = tmp_path / "cache" / "code_hashes.json"
    fresh = lambda: code_hash(script, library, ["templates/page.html.j2"])  # noqa: E731
    assert code_hash(script, library, ["templates/page.html.j2"], cache) == fresh()
    kept = json.loads(cache.read_text())
    [key] = kept["hashes"]
    kept["hashes"][key] = "read from the cache"
    cache.write_text(json.dumps(kept))
    rerun_keys._stored.cache_clear()  # as a new process
    assert code_hash(script, library, ["templates/page.html.j2"], cache) == "read from the cache"
    for path, old, new in ((library / "c.py", "VALUE = 1", "VALUE = 2"), (script, "twice(3)", "twice(4)"),
                           (library / "templates" / "page.html.j2", "<p>", "<div>")):
        edit(path, old, new)
        rerun_keys._stored.cache_clear()
        assert code_hash(script, library, ["templates/page.html.j2"], cache) == fresh() != "read from the cache"
    assert len(json.loads(cache.read_text())["hashes"]) == 1  # only the code as it now is


def test_an_unreadable_cache_is_made_again(tree, tmp_path):
    script, library = tree
    cache = tmp_path / "code_hashes.json"
    state = rerun_keys._library_state(library)
    for text in ("{not json", '["a list"]', '{"library": "another state", "hashes": {"stage.py x": "stale"}}',
                 f'{{"library": "{state}", "hashes": 5}}', f'{{"library": "{state}"}}'):
        cache.write_text(text)
        rerun_keys._stored.cache_clear()
        assert code_hash(script, library, cache=cache) == code_hash(script, library)
        assert json.loads(cache.read_text())["hashes"]  # written anew


def folder_dataset(root):
    return {"kind": "folder", "root": str(root)}


def test_a_file_added_to_or_edited_in_a_corpus_folder_changes_its_listing(tmp_path):
    root = tmp_path / "corpus" / "hunger"
    root.mkdir(parents=True)
    (root / "a.wav").write_bytes(b"RIFF")
    before = corpus_listing(folder_dataset(tmp_path / "corpus"))
    assert corpus_listing(folder_dataset(tmp_path / "corpus")) == before
    (root / "b.wav").write_bytes(b"RIFF")
    added = corpus_listing(folder_dataset(tmp_path / "corpus"))
    assert added != before
    (root / "b.wav").write_bytes(b"RIFF and more")
    assert corpus_listing(folder_dataset(tmp_path / "corpus")) != added


def test_a_listing_s_hash_covers_the_files_it_names_only(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "list.csv").write_text(textwrap.dedent("""\
        path,category
        a.wav,hunger
        """))
    ds = {"kind": "manifest", "root": str(tmp_path), "manifest": "list.csv", "columns": {"path": "path"},
          "time_unit": "s", "sep": ","}  # fmt: skip
    before = corpus_listing(ds)
    (tmp_path / "stray.wav").write_bytes(b"RIFF")  # not in the listing
    assert corpus_listing(ds) == before
    os.utime(tmp_path / "a.wav", ns=(0, 10**9))  # the listed file, touched
    assert corpus_listing(ds) != before

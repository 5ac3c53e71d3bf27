"""The workflow's config before any rule sees it: the canonical form that keeps reruns to real changes, the checks
that stop a bad config in one line naming its key, and the split of what a rule's rerun check sees.

tests/test_workflow.py checks the same through the real workflow; these need no Snakemake run.
"""

import json

import pytest
from conftest import REPO
from snakemake.utils import validate

from cry_diffusion import runtime, workflow_config
from cry_diffusion.workflow_config import CADENCE, ConfigError, cadence, canonical, check, run_device, tracked

SCHEMA_FILE = REPO / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = workflow_config.load_schema(SCHEMA_FILE)


def settled(config):
    """`config` as workflow/rules/common.smk hands it to the rules: the schema's defaults filled, then canonical."""
    validate(config, str(SCHEMA_FILE))
    return canonical(config, SCHEMA)


def text(value):
    """What Snakemake compares a param by: its text, key order and number types included."""
    return json.dumps(value)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Every dataset's root is "." (a folder that exists), and a check reads nothing of the repo."""
    monkeypatch.chdir(tmp_path)


def reordered(value):
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    return value


# --- the canonical form ---

NESTED = {"properties": {
    "train": {"type": "object", "properties": {"steps": {"type": "integer"}, "learning_rate": {"type": "number"},
                                               "ema": {"type": ["boolean", "number"]}}},
    "seconds": {"type": "array", "items": {"type": "number"}},
    "datasets": {"type": "object", "additionalProperties": {"type": "object",
                                                             "properties": {"segment_seconds": {"type": "number"}}}},
}}  # fmt: skip


def test_key_order_gives_one_text():
    config = {"train": {"steps": 3, "learning_rate": 0.5, "ema": True}, "seconds": [1.5, 2.5],
              "datasets": {"b": {"segment_seconds": 5.0}, "a": {"segment_seconds": 1.0}}}  # fmt: skip
    assert text(canonical(config, NESTED)) == text(canonical(reordered(config), NESTED))
    assert list(canonical(config, NESTED)["datasets"]) == ["a", "b"]


def test_numbers_take_the_schema_s_type():
    got = canonical({"train": {"steps": 30.0, "learning_rate": 1, "ema": True}}, NESTED)["train"]
    assert text(got) == text({"ema": True, "learning_rate": 1.0, "steps": 30})
    assert type(got["steps"]) is int and type(got["learning_rate"]) is float
    assert got["ema"] is True  # a bool is an int to Python, but never a number here, where the schema allows both
    assert type(canonical({"train": {"ema": 1}}, NESTED)["train"]["ema"]) is float


def test_list_items_and_a_mapping_s_entries_take_their_schema_s_type():
    got = canonical({"seconds": [2, 2.5], "datasets": {"d": {"segment_seconds": 1, "other": 1}}}, NESTED)
    assert text(got) == text({"datasets": {"d": {"other": 1, "segment_seconds": 1.0}}, "seconds": [2.0, 2.5]})


def test_a_non_whole_float_where_the_schema_says_integer_is_left_for_the_schema_to_refuse():
    assert canonical({"train": {"steps": 2.5}}, NESTED)["train"]["steps"] == 2.5


def test_the_real_schema_gives_one_text_for_the_same_values():
    one = {"datasets": {"d": {"root": ".", "segment_seconds": 1}}, "train": {"steps": 30, "log_every": 5},
           "evaluation": {"copy_percentile": 1.0}}  # fmt: skip
    other = reordered({"datasets": {"d": {"root": ".", "segment_seconds": 1.0}}, "train": {"steps": 30.0, "log_every": 5},
                       "evaluation": {"copy_percentile": 1}})  # fmt: skip
    assert text(settled(one)) == text(settled(other))


# --- the checks ---


def good(**sections):
    """A settled config of one folder dataset (the working directory), with `sections` merged in."""
    return settled({"datasets": {"d": {"root": "."}}} | sections)


def test_a_good_config_passes():
    check(good(datasets={"d": {"root": ".", "category": {"from": "filename", "pattern": r"-(?P<category>\w+)\.wav"}}}))


@pytest.mark.parametrize("sections, message", [
    ({"datasets": {"d": {"root": ".", "category": {"from": "filename", "pattern": "-(..\\.wav"}}}},
     "datasets.d.category.pattern: not a valid regex (missing ), unterminated subpattern at position 1)"),
    ({"datasets": {"d": {"root": ".", "recording": {"from": "filename", "pattern": "^(P..)_"}}}},
     "datasets.d.recording.pattern: needs a (?P<recording>...) group"),
    ({"datasets": {"d": {"root": ".", "category": {"from": "filename"}}}},
     "datasets.d.category.pattern: needed when datasets.d.category.from is 'filename'"),
    ({"datasets": {"d": {"root": "nowhere"}}}, "datasets.d.root: folder 'nowhere' does not exist"),
    ({"mel": {"n_fft": 256, "win_ms": 25}}, "mel.n_fft: 256 is shorter than the 25.0 ms window"),
    ({"diffusion": {"steps": 50}}, "sampling.steps: [200, 100] exceed diffusion.steps (50)"),
    ({"generators": ["mel"], "vocoder": {"kinds": ["diffwave"], "diffwave": {"steps": 500}}},
     "vocoder.diffwave.steps: [500] exceed vocoder.diffwave.diffusion.steps (50)"),
    ({"listening": {"steps": [3]}}, "listening.steps: [3] are not among sampling.steps ([200, 100, 50, 25, 12, 7, 6])"),
    ({"utility": {"route": "mel-griffin_lim"}, "generators": ["waveform"]},
     "utility.route: 'mel-griffin_lim' is not a route of this run (['waveform'])"),
])  # fmt: skip
def test_a_bad_value_is_said_in_one_line_naming_its_key(sections, message):
    config = good(**sections)
    with pytest.raises(ConfigError) as raised:
        check(config)
    assert str(raised.value) == message


def test_a_run_with_every_dataset_disabled_has_nothing_to_run():
    with pytest.raises(ConfigError, match="^datasets: every dataset has enabled: false; nothing to run$"):
        check(settled({"datasets": {"embedded": {"root": "results/embedded_corpus", "enabled": False}}}))


def test_the_schema_s_verdict_is_one_line_naming_the_key():
    config = {"datasets": {"d": {"root": "."}}, "mel": {"hop_msx": 10}}
    assert workflow_config.schema_problem(config, SCHEMA_FILE) == (
        "config key mel: Additional properties are not allowed ('hop_msx' was unexpected)")


def test_the_utility_route_defaults_to_the_first_mel_route():
    assert workflow_config.utility_route(good(generators=["waveform", "mel"])) == "mel-griffin_lim"
    assert workflow_config.utility_route(good(generators=["waveform"])) == "waveform"


# --- what a rule's rerun check sees ---


def test_a_train_section_splits_into_tracked_and_cadence():
    train = good()["train"]
    assert set(cadence(train)) == set(CADENCE) == {"log_every", "checkpoint_every"}
    assert not set(tracked(train)) & set(CADENCE)
    assert tracked(train) | cadence(train) == train


def test_a_named_device_is_kept_and_auto_is_the_cpu_without_a_gpu_driver(monkeypatch):
    assert run_device("cuda") == "cuda" and run_device("cpu") == "cpu"
    monkeypatch.setattr(workflow_config.os.path, "exists", lambda path: False)
    monkeypatch.setattr(runtime, "resolve_device", lambda setting: pytest.fail("torch asked without a GPU driver"))
    assert run_device("auto") == "cpu"


def test_auto_asks_torch_where_a_gpu_driver_is(monkeypatch):
    import torch  # noqa: PLC0415 (only this test needs it)

    monkeypatch.setattr(workflow_config.os.path, "exists", lambda path: path == "/dev/nvidiactl")
    monkeypatch.setattr(runtime, "resolve_device", lambda setting: torch.device("cuda", 0))
    assert run_device("auto") == "cuda"

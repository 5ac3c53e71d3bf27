"""Settings dataclasses: one way in from a config section, and the same defaults as the workflow's schema."""

import pytest
import yaml
from conftest import REPO

from cry_diffusion.diffusion import DiffusionParams
from cry_diffusion.distances import EvalParams
from cry_diffusion.embedding import EmbeddingParams
from cry_diffusion.ingest import IngestParams
from cry_diffusion.listening_analysis import AnalysisParams
from cry_diffusion.listening_plan import StudyParams
from cry_diffusion.loop import TrainParams
from cry_diffusion.mel import MelParams
from cry_diffusion.mel_prior import PriorParams
from cry_diffusion.model import ModelParams
from cry_diffusion.params import Params
from cry_diffusion.segment import SegmentParams
from cry_diffusion.utility import UtilityParams
from cry_diffusion.vocoder import GriffinLimParams, VocoderDiffusionParams, VocoderParams

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["properties"]
# config section -> (its dataclass, config key -> field where the names differ)
SECTIONS = {
    ("model",): (ModelParams, {}),
    ("diffusion",): (DiffusionParams, {}),
    ("train",): (TrainParams, {}),
    ("mel",): (MelParams, {}),
    ("ingest",): (IngestParams, {}),
    ("evaluation",): (EvalParams, {}),
    ("evaluation", "embedding"): (EmbeddingParams, {}),
    ("datasets", "*"): (SegmentParams, {"segment_seconds": "seconds"}),
    ("listening",): (StudyParams, {}),
    ("listening", "analysis"): (AnalysisParams, {}),
    ("mel_prior", "model"): (PriorParams, {}),
    ("mel_prior", "diffusion"): (DiffusionParams, {}),
    ("mel_prior", "train"): (TrainParams, {}),
    ("vocoder", "griffin_lim"): (GriffinLimParams, {}),
    ("vocoder", "diffwave", "model"): (VocoderParams, {}),
    ("vocoder", "diffwave", "diffusion"): (VocoderDiffusionParams, {}),
    ("vocoder", "diffwave", "train"): (TrainParams, {}),
    ("utility",): (UtilityParams, {}),
}


def schema_defaults(path):
    node = SCHEMA[path[0]]
    for key in path[1:]:
        node = node["additionalProperties"] if key == "*" else node["properties"][key]
    return {k: spec["default"] for k, spec in node["properties"].items() if "default" in spec}


@pytest.mark.parametrize("path", SECTIONS, ids=".".join)
def test_schema_and_dataclass_defaults_agree(path):
    cls, renamed = SECTIONS[path]
    ours = cls().to_dict()
    shared = {renamed.get(k, k): v for k, v in schema_defaults(path).items() if renamed.get(k, k) in ours}
    assert len(shared) >= 2, f"{cls.__name__} shares almost no keys with config.{'.'.join(path)}: wrong pairing?"
    differ = {k: (v, ours[k]) for k, v in shared.items() if v != ours[k]}
    assert not differ, f"config.{'.'.join(path)} (schema, dataclass): {differ}"


def test_every_settings_dataclass_is_covered():
    """A new Params subclass needs a row above, or its defaults could drift from the schema unseen."""
    import cry_diffusion.features  # noqa: F401  (FeatureParams: fixed constants, not in the config)

    def all_subclasses(c):
        return {s for d in c.__subclasses__() for s in {d} | all_subclasses(d)}

    paired = {cls for cls, _ in SECTIONS.values()}
    assert {c.__name__ for c in all_subclasses(Params) - paired} == {"FeatureParams"}


@pytest.mark.parametrize("cls", [cls for cls, _ in SECTIONS.values()], ids=lambda c: c.__name__)
def test_from_dict_round_trips_and_ignores_other_keys(cls):
    d = cls().to_dict()
    assert cls.from_dict(d | {"not_a_field": 1}) == cls()


def test_from_dict_takes_lists_for_tuples_and_overrides():
    p = DiffusionParams.from_dict({"fast_betas": [0.1, 0.5], "steps": 50}, steps=60)
    assert p.fast_betas == (0.1, 0.5) and p.steps == 60
    hash(p)  # frozen and hashable: the schedule cache keys on it
    assert p.to_dict()["fast_betas"] == [0.1, 0.5]

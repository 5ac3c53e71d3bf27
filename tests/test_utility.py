"""Does synthetic data help a cry classifier? The machinery shown the cases that would fool it."""

import numpy as np
import pandas as pd
import pytest

from cry_diffusion import SAMPLE_RATE, utility, withheld
from cry_diffusion.mel import log_mel
from cry_diffusion.segment import TABLE_COLUMNS
from cry_diffusion.synth_cry import synthesize_cry
from cry_diffusion.synth_params import CATEGORIES

# small and quick: every grid cell is trained 3 times, bootstrapped 200 times
PARAMS = utility.UtilityParams(fractions=(0.25, 1.0), ratios=(1.0,), seeds=3, bootstrap=200)


def recordings(per_category: int, seed: int, segments: int = 2) -> utility.Clips:
    """Synthetic cries of every category: `per_category` recordings each, cut into `segments` 1-s segments."""
    mels, labels, names = [], [], []
    for c in CATEGORIES:
        for k in range(per_category):
            audio = synthesize_cry(c, segments, SAMPLE_RATE, seed=1000 * seed + k)
            for s in range(segments):
                mels.append(log_mel(audio[s * SAMPLE_RATE:(s + 1) * SAMPLE_RATE]))
                labels.append(c)
                names.append(f"{c}-{seed}-{k}")
    return utility.Clips(np.stack(mels), labels, names)


@pytest.fixture(scope="module")
def split():
    return recordings(8, seed=1), recordings(3, seed=2)


def row(result, name, fraction=1.0):
    return next(r for r in result["rows"] if r["name"] == name and r["fraction"] == fraction)


def test_real_training_clips_replayed_as_generated_match_real_only(split):
    """A generator that returned its training data exactly: TSTR within TRTR's interval (it is the same training set)."""
    train, test = split
    result = utility.compare(train, test, utility.Clips(train.mels, train.labels, [f"g{i}" for i in range(len(train.labels))]),
                             PARAMS)  # fmt: skip
    trtr, tstr = row(result, "trtr")["uar"], row(result, "tstr")["uar"]
    assert trtr["low"] <= tstr["value"] <= trtr["high"]
    assert trtr["value"] > 0.6 > result["chance"]  # the classifier learns these categories at all


def test_noise_as_generated_trains_a_classifier_at_chance(split):
    train, test = split
    rng = np.random.default_rng(0)
    noise = rng.normal(train.mels.mean(), train.mels.std(), train.mels.shape).astype(np.float32)
    result = utility.compare(train, test, utility.Clips(noise, train.labels, [f"g{i}" for i in range(len(noise))]), PARAMS)
    tstr = row(result, "tstr")["uar"]
    assert tstr["low"] <= result["chance"] <= tstr["high"] + 0.05
    assert row(result, "trtr")["uar"]["low"] > tstr["high"]


def test_generated_clips_with_shuffled_labels_do_not_help(split):
    """Real cries under the wrong names, added to the real set: never "helps", at any share of the recordings."""
    train, test = split
    pool = recordings(8, seed=3)
    shuffled = np.random.default_rng(0).permutation(pool.labels)
    result = utility.compare(train, test, utility.Clips(pool.mels, shuffled, pool.recordings), PARAMS)
    augmented = [r for r in result["rows"] if r["name"].startswith("augmented")]
    assert augmented and all(r["effect"] != "helps" for r in augmented)
    # the same clips under their own names: the machinery can say "helps" where it is so
    honest = utility.compare(train, test, pool, PARAMS)
    assert row(honest, "augmented x1", 0.25)["difference"]["value"] > row(result, "augmented x1", 0.25)["difference"]["value"]


def test_no_test_recording_reaches_a_training_set(split, monkeypatch):
    """Every classifier of the grid is trained on none of the test recordings' segments (by recording, not segment)."""
    train, test = split
    pool = recordings(8, seed=4)
    seen = []
    real = utility.fit_predict

    def watching(x, y, test_x, p, seed):
        seen.append(x)
        return real(x, y, test_x, p, seed)

    monkeypatch.setattr(utility, "fit_predict", watching)
    utility.compare(train, test, pool, PARAMS)
    test_rows = {tuple(np.round(f, 6)) for f in test.features()}
    assert seen and not any(tuple(np.round(f, 6)) in test_rows for x in seen for f in x)
    # and a test recording among the training ones is refused outright
    leaky = utility.Clips(np.concatenate([train.mels, test.mels[:2]]), np.concatenate([train.labels, test.labels[:2]]),
                          np.concatenate([train.recordings, test.recordings[:2]]))  # fmt: skip
    with pytest.raises(ValueError, match="test recordings in the training set"):
        utility.compare(leaky, test, pool, PARAMS)


def test_the_fraction_keeps_whole_recordings_and_every_category(split):
    train, _ = split
    picked = utility._pick_recordings(train, 0.25, np.random.default_rng(0))
    kept = set(train.recordings[picked])
    assert set(train.labels[picked]) == set(CATEGORIES)
    assert all((train.recordings == r).sum() == (train.recordings[picked] == r).sum() for r in kept)  # whole recordings


def test_a_withheld_category_never_reaches_the_second_generator(tmp_path):
    """The table the second generator trains on has none of the category's training segments on its training side."""
    from cry_diffusion.segment import side

    rows = [{"index": i, "path": f"{c}{k}.wav", "sha256": "", "category": c, "start_s": 0.0, "padded_samples": 0,
             "band_limited": False, "recording": f"{c}{k}", "region_start_s": "", "region_end_s": "",
             "split": "heldout" if k == 0 else "train"} for i, (c, k) in enumerate((c, k) for c in CATEGORIES for k in range(3))]  # fmt: skip
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS + ["split"])
    without = withheld.table_without(table, "pain")
    assert "pain" not in set(side(without, "train")["category"]) and len(side(without, "train")) == 4 * 2
    assert (side(without, "heldout")["category"] == "pain").sum() == 1  # its held-out clips stay: they are the test
    assert withheld.categories("first", list(CATEGORIES)) == ["asphyxia"]
    assert withheld.categories("all", list(CATEGORIES)) == sorted(CATEGORIES)
    assert withheld.categories(["pain", "nope"], list(CATEGORIES)) == ["pain"]
    assert withheld.categories("first", ["only"]) == []


def test_unbalanced_categories_are_filled_up_to_the_largest_and_scored_by_uar(split):
    """A corpus like the phone app's (one category many times the others): the balanced mix adds generated clips
    to each small category up to the largest, and UAR weighs every category alike where accuracy does not."""
    train, test = split
    keep = np.isin(train.recordings, [r for r in np.unique(train.recordings)
                                      if not r.startswith(("pain", "deaf")) or r.endswith(("-0", "-1"))])  # fmt: skip
    scarce = utility.Clips(train.mels[keep], train.labels[keep], train.recordings[keep])
    counts = {c: int((scarce.labels == c).sum()) for c in CATEGORIES}
    assert counts["pain"] == counts["deaf"] == 4 and counts["hunger"] == 16
    pool = recordings(8, seed=5)
    result = utility.compare(scarce, test, pool, PARAMS)
    balanced = row(result, "balanced")
    assert balanced["sizes"][0] == {"real": sum(counts.values()), "generated": sum(16 - n for n in counts.values())}
    assert utility.pool_size(counts, PARAMS)["pain"] == 12  # the largest less its own: what balancing draws
    assert 0 <= balanced["uar"]["low"] <= balanced["uar"]["value"] <= balanced["uar"]["high"] <= 1

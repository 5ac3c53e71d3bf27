"""How the embedded synthetic cries measure against a real phone-app cry corpus.

Synthesises the clips `write_corpus` would write (N per category, durations drawn from
`seconds`, as config.yaml's `embedded_corpus`), at 16 kHz, and prints the pYIN statistics of
`cry_diffusion.synth_stats.corpus_statistics` beside `PHONE_APP_STATS` (457 clean phone-app clips):

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/corpus_stats.py            # 12 per category, ~1-2 min
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/corpus_stats.py -n 4 --per-category

tests/test_synth.py::test_corpus_statistics_match_phone_app holds the same figures in bands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cry_diffusion import synth, synth_stats  # noqa: E402
from cry_diffusion.synth_params import CATEGORIES  # noqa: E402

SR = 16000
ROWS = (("median_f0_hz", "median f0 (Hz)", "{:.0f}"), ("f0_p10_hz", "clip-median f0 p10 (Hz)", "{:.0f}"),
        ("f0_p90_hz", "clip-median f0 p90 (Hz)", "{:.0f}"), ("voiced_fraction", "voiced fraction", "{:.2f}"),
        ("f0_ratio", "f0 p90/p10 within clip", "{:.2f}"), ("centroid_hz", "spectral centroid (Hz)", "{:.0f}"))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--clips-per-category", type=int, default=12)
    ap.add_argument("--seconds", type=float, nargs=2, default=(2.0, 4.0))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-category", action="store_true", help="also print each category's statistics")
    a = ap.parse_args(argv)
    clips = synth.embedded_clips(a.clips_per_category, tuple(a.seconds), a.seed, SR)
    rows = [synth_stats.clip_statistics(y, SR) for y in clips]
    stats = {"all": synth_stats.summarise_statistics(rows)}
    if a.per_category:
        n = a.clips_per_category
        for i, c in enumerate(CATEGORIES):
            stats[c] = synth_stats.summarise_statistics(rows[i * n:(i + 1) * n])
    print(f"embedded corpus, {a.clips_per_category} clips per category x {len(CATEGORIES)}, "
          f"{a.seconds[0]}-{a.seconds[1]} s, 16 kHz, seed {a.seed}")
    head = f"{'statistic':26s}{'phone-app':>10s}" + "".join(f"{k:>10s}" for k in stats)
    print(head)
    for key, name, fmt in ROWS:
        print(f"{name:26s}{fmt.format(synth_stats.PHONE_APP_STATS[key]):>10s}"
              + "".join(f"{fmt.format(s[key]):>10s}" for s in stats.values()))


if __name__ == "__main__":
    main()

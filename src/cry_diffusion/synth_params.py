"""The synthetic cry's knobs: one parameter table per cry category, and the constants all categories share.

The model they drive, and the literature behind each knob, is described in cry_diffusion.synth_cry.

Five categories mirror Baby Chillanto's five folders. Their differences follow
what the literature reports, exaggerated enough to be measurable on short
clips: pain cries are higher, longer, with sharp onsets and frequent
hyperphonation; hunger cries are rhythmic, with medium f0 and regular pauses;
asphyxia cries are quieter, noisier, more perturbed, with weaker harmonics and
many voice breaks; cries of deaf infants are flatter in melody and lower in
f0 range; normal cries are the typical ~450 Hz rising-falling pattern.

    from cry_diffusion.synth_params import CATEGORIES, CATEGORY_PARAMS
    CATEGORY_PARAMS["pain"]["f0_hz"]   # 570.0
"""

from __future__ import annotations

# category parameter table: one dict per category, every knob commented once (on "normal")
CATEGORY_PARAMS: dict[str, dict] = {
    "normal": dict(
        f0_hz=450.0,            # median per-unit base f0 (Hz)
        f0_clip_st=(3.5, 1.0),  # SD of a clip's (an infant's) f0 offset below / above the median (semitones)
        f0_unit_st=3.0,         # SD of base f0 between units (semitones)
        melody_st=10.0,         # depth of the rising-falling hump within a unit (semitones)
        melody_peak=(0.35, 0.5),  # where in the unit the f0 peak sits (fraction of unit)
        end_fall_st=3.0,        # extra fall from unit start to unit end (semitones)
        tremor_st=0.3,          # slow 4-8 Hz f0 wobble depth (semitones)
        unit_s=(0.6, 1.2),      # expiration (cry unit) duration range (s)
        pause_s=(0.45, 1.0),    # inspiratory pause duration range (s)
        whoop_prob=0.2,         # chance a pause carries an inspiratory stridor ("whoop")
        hyper_prob=0.1,         # chance a unit contains a hyperphonation jump
        hyper_hz=(1000, 1600),  # hyperphonation target f0 range (Hz)
        breaks_per_s=1.0,       # rate of voice breaks (noisy unvoiced stretches) within units
        break_s=(0.06, 0.3),    # voice break duration range (s)
        jitter=0.01,            # SD of per-cycle relative f0 perturbation
        shimmer_db=0.5,         # SD of per-cycle amplitude perturbation (dB)
        tilt_db_oct=-11.0,      # source spectral tilt of the harmonics (dB/octave)
        hnr_db=20.0,            # harmonic-to-aspiration-noise ratio within units (dB)
        attack_s=0.05,          # unit onset (raised-cosine attack) time (s)
        level_db_sd=1.5,        # SD of unit-to-unit level (dB)
        peak=(0.75, 0.9),       # per-clip output peak range (linear)
    ),
    "hunger": dict(
        f0_hz=430.0, f0_clip_st=(3.5, 1.0), f0_unit_st=3.0, melody_st=9.0, melody_peak=(0.4, 0.5), end_fall_st=2.5,
        tremor_st=0.2, unit_s=(0.55, 0.7), pause_s=(0.6, 0.7), whoop_prob=0.15,
        hyper_prob=0.03, hyper_hz=(1000, 1400), breaks_per_s=0.8, break_s=(0.06, 0.3), jitter=0.008,
        shimmer_db=0.4, tilt_db_oct=-11.0, hnr_db=22.0, attack_s=0.06, level_db_sd=0.8,
        peak=(0.75, 0.9),
    ),
    "pain": dict(
        f0_hz=570.0, f0_clip_st=(3.5, 1.0), f0_unit_st=1.5, melody_st=7.0, melody_peak=(0.15, 0.3), end_fall_st=3.0,
        tremor_st=0.4, unit_s=(1.0, 1.5), pause_s=(0.6, 1.0), whoop_prob=0.35,
        hyper_prob=0.6, hyper_hz=(1200, 2000), breaks_per_s=0.4, break_s=(0.04, 0.15), jitter=0.015,
        shimmer_db=0.7, tilt_db_oct=-6.5, hnr_db=17.0, attack_s=0.012, level_db_sd=1.5,
        peak=(0.8, 0.9),
    ),
    "deaf": dict(
        f0_hz=310.0, f0_clip_st=(3.5, 1.0), f0_unit_st=1.0, melody_st=2.0, melody_peak=(0.4, 0.6), end_fall_st=1.0,
        tremor_st=0.15, unit_s=(0.6, 1.2), pause_s=(0.45, 1.0), whoop_prob=0.15,
        hyper_prob=0.03, hyper_hz=(1000, 1300), breaks_per_s=1.0, break_s=(0.06, 0.3), jitter=0.012,
        shimmer_db=0.6, tilt_db_oct=-12.0, hnr_db=18.0, attack_s=0.05, level_db_sd=1.5,
        peak=(0.7, 0.85),
    ),
    "asphyxia": dict(
        f0_hz=430.0, f0_clip_st=(3.5, 1.0), f0_unit_st=2.5, melody_st=11.0, melody_peak=(0.3, 0.6), end_fall_st=2.5,
        tremor_st=0.6, unit_s=(0.45, 1.0), pause_s=(0.4, 1.0), whoop_prob=0.3,
        hyper_prob=0.1, hyper_hz=(1000, 1800), breaks_per_s=2.0, break_s=(0.06, 0.35), jitter=0.03,
        shimmer_db=1.5, tilt_db_oct=-13.0, hnr_db=9.0, attack_s=0.08, level_db_sd=3.0,
        peak=(0.5, 0.62),
    ),
}
CATEGORIES: tuple[str, ...] = ("asphyxia", "deaf", "hunger", "normal", "pain")

# shared vocal-tract and rendering constants (infant tract; same for all categories)
FORMANTS_HZ = ((1000, 1200), (2500, 3000), (4000, 4500))  # F1, F2, F3 ranges (Hz)
FORMANT_BW_HZ = (250.0, 350.0, 450.0)  # resonance bandwidths (infant tracts are lossy: wide)
FORMANT_GAIN_DB = (12.0, 9.0, 7.0)     # peak boost of each resonance over the source
HARMONIC_TOP_HZ = 11_000.0             # no harmonic above this (cries carry little energy higher)
ROLLOFF_HZ = 7_000.0                   # gentle 2nd-order low-pass on voice and noise above this (if < 0.45*sr)
NYQUIST_MARGIN = 0.9                   # ...nor above this fraction of Nyquist (anti-aliasing)
NOISE_BAND_HZ = (250.0, 4000.0)        # band of the aspiration/breath noise (before the tract)
BREATH_BAND_HZ = (100.0, 2500.0)       # band (1st order) of the breath noise in pauses and of the floor
BREATH_DB = -32.0                      # breath noise in pauses, relative to unit level
MAX_BREAK_SHARE = 0.4                  # voice breaks cover at most this share of a unit (drawn ones past it are dropped)
BREAK_DEPTH = 0.99                     # how far the harmonics fall inside a voice break (1 = silent)
FLOOR_DB = -60.0                       # recording noise floor, relative to unit level
LEAD_S = (0.03, 0.2)                   # quiet before the first unit (s)
CHUNK = 4096                           # samples per chunk of harmonic synthesis (bounds memory)

"""Progress of a long stage on the console: steps done of the total, the rate, and the time left, as plain lines.

    from cry_diffusion import console
    console.show("train embedded")                  # once per process: lines on, each starting with this name
    ticker = console.Ticker("training", 400)        # a first line at once
    ticker(25, loss=0.41)                           # the first update, then one every INTERVAL seconds at most
    ticker(400, loss=0.05)                          # and the last

    train embedded: training 0 of 400 steps (0%)
    train embedded: training 25 of 400 steps (6%), 12.5 steps/s, 0:00:30 left, loss 0.41
    train embedded: training 400 of 400 steps (100%), 12.1 steps/s, done in 0:00:33, loss 0.05

Whole lines, never a carriage return: in a log file or a SLURM job's output file a redrawn bar
is one long smear of control characters, and several jobs' bars on one console overwrite each
other; whole lines interleave cleanly. They go to standard output, flushed one by one (through a
pipe Python would otherwise hold them until the process ends): the workflow's scripts send standard
error to the rule's log, so standard output is what reaches Snakemake's console.

Nothing is printed until `show` is called, so the library stays quiet inside other programs and
tests. `show` keeps its setting in the environment, so that the processes this one starts (torchrun's
workers, a spawned pool) print as it does.
"""

from __future__ import annotations

import datetime
import os
import sys
import time

INTERVAL = 30.0  # seconds between lines at most: often enough to see a stage move, rarely enough to read a log
_ENV = "CRY_DIFFUSION_CONSOLE"  # set (to the name lines start with, perhaps empty): lines are printed


def show(name: str = "") -> None:
    """Print progress lines from here on, in this process and the ones it starts, each starting with `name`."""
    os.environ[_ENV] = name


def duration(seconds: float) -> str:
    """0:04:05, or 2 days, 3:04:05."""
    return str(datetime.timedelta(seconds=round(seconds)))


class Ticker:
    """Lines for one loop of `total` units: one now, one at the first update, then at most every `interval` seconds,
    and one when `done` reaches `total`.

    The rate is the mean since the ticker started, so a run resumed at `done` counts only what this process did.
    quiet: print nothing (the ranks of a torchrun job other than the first).
    """

    def __init__(self, what: str, total: int, done: int = 0, unit: str = "step", interval: float = INTERVAL,
                 quiet: bool = False, clock=time.monotonic):
        self.what, self.total, self.unit, self.interval, self._clock = what, int(total), unit, interval, clock
        self.quiet = quiet or _ENV not in os.environ
        self.done = self._start_done = int(done)
        self._start = self._last = clock()
        self._updates = 0
        self._say(self._progress())

    def __call__(self, done: int, **extra) -> None:
        """`done` units of the total are done; extra: figures for the line (loss=0.41 prints "loss 0.41")."""
        self.done = int(done)
        self._updates += 1
        now = self._clock()
        if self.quiet or (self._updates > 1 and self.done < self.total and now - self._last < self.interval):
            return
        self._last = now
        parts = [self._progress()]
        rate = (self.done - self._start_done) / max(now - self._start, 1e-9)
        if self.done > self._start_done:
            parts.append(f"{rate:.3g} {self.unit}s/s" if rate >= 1 else f"{1 / rate:.3g} s/{self.unit}")
            parts.append(f"done in {duration(now - self._start)}" if self.done >= self.total
                         else f"{duration((self.total - self.done) / rate)} left")
        parts += [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items()]
        self._say(", ".join(parts))

    def counting(self, fn):
        """fn, each call of which is one more unit done."""
        def counted(*args, **kwargs):
            out = fn(*args, **kwargs)
            self(self.done + 1)
            return out

        return counted

    def _progress(self) -> str:
        share = self.done / self.total if self.total else 1.0
        return f"{self.what} {self.done:,} of {self.total:,} {self.unit}s ({share:.0%})"

    def _say(self, line: str) -> None:
        if not self.quiet:
            name = os.environ.get(_ENV, "")
            print(f"{name}: {line}" if name else line, file=sys.stdout, flush=True)

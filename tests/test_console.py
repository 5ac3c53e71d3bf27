"""Progress lines on the console (cry_diffusion.console): when they come, what they say, and when they don't."""

import pytest

from cry_diffusion import console


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def shown(monkeypatch):
    monkeypatch.setenv("CRY_DIFFUSION_CONSOLE", "train embedded")


def test_a_first_line_the_first_update_then_one_per_interval_and_the_last(shown, capsys):
    clock = Clock()
    ticker = console.Ticker("training", 1000, clock=clock)
    for step in range(10, 1001, 10):  # 10 steps a second for 100 s
        clock.now += 1.0
        ticker(step, loss=0.5)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "train embedded: training 0 of 1,000 steps (0%)",
        "train embedded: training 10 of 1,000 steps (1%), 10 steps/s, 0:01:39 left, loss 0.5",
        "train embedded: training 310 of 1,000 steps (31%), 10 steps/s, 0:01:09 left, loss 0.5",
        "train embedded: training 610 of 1,000 steps (61%), 10 steps/s, 0:00:39 left, loss 0.5",
        "train embedded: training 910 of 1,000 steps (91%), 10 steps/s, 0:00:09 left, loss 0.5",
        "train embedded: training 1,000 of 1,000 steps (100%), 10 steps/s, done in 0:01:40, loss 0.5",
    ]


def test_a_resumed_run_counts_only_the_steps_this_process_did(shown, capsys):
    clock = Clock()
    ticker = console.Ticker("training", 500_000, done=400_000, clock=clock)
    clock.now += 200.0
    ticker(400_100)  # 100 steps in 200 s: 2 s a step, 99,900 steps left
    assert capsys.readouterr().out.splitlines() == [
        "train embedded: training 400,000 of 500,000 steps (80%)",
        "train embedded: training 400,100 of 500,000 steps (80%), 2 s/step, 2 days, 7:30:00 left",
    ]


def test_each_call_of_a_counted_function_is_one_unit(shown, capsys):
    clock = Clock()
    ticker = console.Ticker("sampling", 4, unit="denoising step", clock=clock)
    step = ticker.counting(lambda x: x + 1)
    for _ in range(4):
        clock.now += 0.5
        assert step(1) == 2
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "train embedded: sampling 4 of 4 denoising steps (100%), 2 denoising steps/s, done in 0:00:02"
    assert "\r" not in out


def test_silent_until_shown_and_on_quiet_ranks(monkeypatch, capsys):
    monkeypatch.delenv("CRY_DIFFUSION_CONSOLE", raising=False)
    console.Ticker("training", 10)(10)
    monkeypatch.setenv("CRY_DIFFUSION_CONSOLE", "")
    console.Ticker("training", 10, quiet=True)(10)
    assert capsys.readouterr().out == ""
    console.Ticker("training", 10)  # shown without a name: the line starts with what runs
    assert capsys.readouterr().out == "training 0 of 10 steps (0%)\n"


def test_show_reaches_the_processes_this_one_starts(monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("CRY_DIFFUSION_CONSOLE", "")  # so that monkeypatch restores the environment afterwards
    console.show("train embedded")
    child = "from cry_diffusion import console; console.Ticker('training', 3)(3)"
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1].startswith("train embedded: training 3 of 3 steps (100%), ")

"""The learning-rate schedule (fhvae.training.lr_schedule): warm-up ramp, cosine and linear
decay to the floor, by steps or by a time budget, the constant default, and its config
errors."""

import math

import pytest

from fhvae.errors import FhvaeError
from fhvae.training.config import TrainConfig
from fhvae.training.lr_schedule import decay_progress, lr_at

PEAK = 2e-3


def cfg(**overrides) -> TrainConfig:
    base = dict(lr=PEAK, max_steps=110, warmup_steps=10, lr_floor=0.1,
                lr_schedule="cosine")
    base.update(overrides)
    return TrainConfig(**base)


def lr_of_step(c: TrainConfig, step: int, elapsed: float = 0.0) -> float:
    return lr_at(c, step, decay_progress(c, step, elapsed))


@pytest.mark.parametrize("schedule", ["constant", "cosine", "linear"])
def test_warmup_ramps_linearly_to_the_peak(schedule):
    c = cfg(lr_schedule=schedule)
    assert [lr_of_step(c, n) for n in (1, 2, 5, 10)] == pytest.approx(
        [PEAK / 10, PEAK / 5, PEAK / 2, PEAK], rel=1e-12)
    assert lr_of_step(c, 10) == PEAK                    # the peak, at the last warm-up step


def test_cosine_starts_at_the_peak_halves_at_the_midpoint_and_ends_at_the_floor():
    c = cfg()
    floor = 0.1 * PEAK
    assert lr_at(c, 50, 0.0) == pytest.approx(PEAK)
    assert lr_at(c, 50, 0.5) == pytest.approx(floor + (PEAK - floor) / 2, rel=1e-12)
    assert lr_at(c, 50, 1.0) == pytest.approx(floor, rel=1e-12)
    # By steps: decay over steps 10..110, the midpoint at step 60, the floor at max_steps.
    assert lr_of_step(c, 60) == pytest.approx(floor + (PEAK - floor) / 2, rel=1e-12)
    assert lr_of_step(c, 110) == pytest.approx(floor, rel=1e-12)
    assert lr_of_step(c, 500) == pytest.approx(floor, rel=1e-12)      # beyond: stays there
    values = [lr_of_step(c, n) for n in range(10, 111)]
    assert all(a > b for a, b in zip(values, values[1:]))            # strictly decreasing
    assert lr_of_step(cfg(lr_floor=0.0), 110) == 0.0


def test_linear_decay_is_a_straight_line_to_the_floor():
    c = cfg(lr_schedule="linear")
    floor = 0.1 * PEAK
    for p in (0.0, 0.25, 0.5, 0.75, 1.0):
        assert lr_at(c, 50, p) == pytest.approx(PEAK - p * (PEAK - floor), rel=1e-12)
    steps = [lr_of_step(c, n) for n in range(10, 111)]
    diffs = [a - b for a, b in zip(steps, steps[1:])]
    assert diffs == pytest.approx([(PEAK - floor) / 100] * 100, rel=1e-9)


def test_constant_is_exactly_lr_whatever_the_step_or_time():
    c = TrainConfig(lr=PEAK)                              # the defaults: constant, no warm-up
    assert (c.lr_schedule, c.warmup_steps, c.lr_floor) == ("constant", 0, 0.0)
    for step in (1, 7, c.max_steps, 10 * c.max_steps):
        assert lr_of_step(c, step) == PEAK               # bit for bit, not approximately
    timed = TrainConfig(lr=PEAK, max_minutes=1.0, lr_floor=0.5)
    assert lr_of_step(timed, 3, elapsed=59.0) == PEAK
    assert lr_of_step(TrainConfig(lr=PEAK, warmup_steps=4), 2) == PEAK / 2


def test_a_time_budget_decays_by_the_share_of_max_minutes_used():
    c = cfg(max_steps=1_000_000, max_minutes=2.0)      # the steps would hardly decay
    assert decay_progress(c, 20, elapsed=60.0) == 0.5
    assert decay_progress(c, 20, elapsed=500.0) == 1.0
    floor = 0.1 * PEAK
    assert lr_of_step(c, 20, elapsed=60.0) == pytest.approx(floor + (PEAK - floor) / 2)
    assert lr_of_step(c, 20, elapsed=120.0) == pytest.approx(floor)
    # Whichever budget is further along decays: here the steps.
    assert decay_progress(cfg(max_minutes=100.0), 60, elapsed=60.0) == 0.5
    # Time spent in the warm-up: the ramp stays below the decayed value, no jump at its end.
    assert lr_of_step(c, 5, elapsed=60.0) == pytest.approx(PEAK / 2)
    assert lr_of_step(c, 10, elapsed=60.0) == pytest.approx(floor + (PEAK - floor) / 2)


@pytest.mark.parametrize("options, message", [
    ({"lr_schedule": "exp"}, "lr_schedule must be constant, cosine or linear, got 'exp'"),
    ({"warmup_steps": -1}, "warmup_steps must be an integer >= 0, got -1"),
    ({"warmup_steps": 2.5}, "warmup_steps must be an integer >= 0, got 2.5"),
    ({"warmup_steps": 100, "max_steps": 100},
     r"warmup_steps \(100\) must be below max_steps \(100\)"),
    ({"lr_floor": 1.5}, r"lr_floor must be a fraction of lr in \[0, 1\], got 1.5"),
    ({"lr_floor": -0.1}, r"lr_floor must be a fraction of lr in \[0, 1\], got -0.1"),
    ({"lr_floor": "1e-1"}, r"lr_floor must be a fraction of lr in \[0, 1\], got '1e-1'"),
])
def test_bad_schedule_options_are_one_line_errors_naming_the_field(options, message):
    with pytest.raises(FhvaeError, match=rf"^c\.yaml: {message}$") as err:
        TrainConfig.from_dict(options, "c.yaml")
    assert "\n" not in str(err.value)


def test_schedule_options_load_from_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.002\nlr_schedule: linear\nwarmup_steps: 50\nlr_floor: 0.1\n"
                    "max_steps: 1000\n")
    c = TrainConfig.load(path)
    assert (c.lr_schedule, c.warmup_steps, c.lr_floor) == ("linear", 50, 0.1)
    assert lr_of_step(c, 1000) == pytest.approx(2e-4)
    assert math.isclose(lr_of_step(c, 25), 1e-3)

"""The learning-rate schedule: linear warmup to the peak, then cosine, linear or constant to the last step."""

from __future__ import annotations

import math

import pytest

from labrador.train.loop import lr_factor


def test_warmup_rises_linearly_to_the_peak() -> None:
    assert [lr_factor(s, 3, 10, "cosine") for s in range(4)] == [0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize(("kind", "middle", "last"), [("cosine", 0.5, 0.0), ("linear", 0.5, 0.0),
                                                      ("constant", 1.0, 1.0)])
def test_decay_after_warmup(kind: str, middle: float, last: float) -> None:
    # warmup 2, 12 steps: decay runs over steps 2..12, its middle is step 7
    assert lr_factor(2, 2, 12, kind) == 1.0
    assert lr_factor(7, 2, 12, kind) == pytest.approx(middle)
    assert lr_factor(12, 2, 12, kind) == pytest.approx(last, abs=1e-12)
    assert lr_factor(50, 2, 12, kind) == pytest.approx(last, abs=1e-12)  # past the end: stays at the floor


def test_cosine_shape() -> None:
    assert lr_factor(4, 0, 16, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))

"""The benchmarks still run: the refresh measure end to end on a few claims (both the refresh
and its plugins-alone reference check every claim, none failing), the lookup measure and its
layer-by-layer timing on a few calls, and the printed line.

No timing is asserted: the figures are the benchmark's to print, not a test's to judge.
"""

from __future__ import annotations

from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(autouse=True)
def benchmarks_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def test_refresh_measure_checks_every_claim_with_and_without_the_core(tmp_path: Path) -> None:
    import bench_refresh

    result = bench_refresh.measure(tmp_path, claims=8, runs=1)

    assert result.extra_ok  # every claim checked, none failed, in both runs; RSS in bounds
    assert "for 8 claims (1 changed, failed none)" in result.detail
    assert "the plugins alone, without the core:" in result.detail
    assert result.ratio > 0


def test_lookup_measure_and_its_layers_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import bench_lookup
    import lookup_layers

    result = bench_lookup.measure(tmp_path, calls=5, rounds=2)
    monkeypatch.setattr(lookup_layers, "CALLS", 5)
    monkeypatch.setattr(lookup_layers, "ROUNDS", 2)

    assert lookup_layers.main() == 0
    assert result.ratio > 0
    assert "bare httpx" in result.detail
    printed = capsys.readouterr().out.splitlines()
    layers = [line.split()[0] for line in printed if " us per call " in line]
    assert layers == ["bare", "client", "payload", "plugin", "facade"]


def test_a_ratio_just_above_its_floor_does_not_print_as_the_floor() -> None:
    from common import Measured

    measured = Measured("m", 1.204, 1.2)

    assert measured.line() == "m: 1.204x (floor 1.2x)"
    assert not measured.ok
    assert Measured("m", 1.2, 1.2).ok
    assert not Measured("m", 1.0, 1.2, extra_ok=False).ok

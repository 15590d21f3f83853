"""The capacity planner's class-start prediction (hub.capacity) and its command."""

from __future__ import annotations

import json

import pytest
from classroom.loadtest import main as loadtest_main
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.capacity import labs_in_memory, predict_class_start


def test_one_at_a_time_on_one_core_is_a_line() -> None:
    p = predict_class_start(4, cores=1, parallel=1, cpu_per_lab=2.0, latency_s=0.5)
    assert p.ready_s == pytest.approx((2.5, 5.0, 7.5, 10.0))
    assert p.all_ready_s == pytest.approx(10.0)
    assert p.quantile(0.5) == pytest.approx(5.0)


def test_starting_more_at_once_than_cores_only_shares_them() -> None:
    shared = predict_class_start(4, cores=2, parallel=4, cpu_per_lab=2.0, latency_s=0.0)
    queued = predict_class_start(4, cores=2, parallel=2, cpu_per_lab=2.0, latency_s=0.0)
    assert shared.ready_s == pytest.approx((4.0,) * 4)  # everyone late
    assert queued.ready_s == pytest.approx((2.0, 2.0, 4.0, 4.0))  # the first half early
    assert shared.all_ready_s == pytest.approx(queued.all_ready_s)


def test_a_machine_busy_with_other_work_starts_the_class_slower() -> None:
    free = predict_class_start(8, cores=2, cpu_per_lab=1.0, latency_s=0.0)
    half = predict_class_start(8, cores=2, cpu_per_lab=1.0, latency_s=0.0, cpu_share=0.5)
    assert half.all_ready_s == pytest.approx(2 * free.all_ready_s)
    with pytest.raises(ValueError):
        predict_class_start(8, cores=2, cpu_share=0)


def test_students_arriving_over_a_window_barely_wait() -> None:
    p = predict_class_start(10, cores=2, cpu_per_lab=1.0, latency_s=0.5, window_s=60)
    assert p.ready_s == pytest.approx((1.5,) * 10)


@settings(max_examples=60, deadline=None)
@given(students=st.integers(1, 60), cores=st.integers(1, 8), cpu=st.floats(0.2, 5.0))
def test_more_cores_never_make_a_class_wait_longer(students: int, cores: int, cpu: float) -> None:
    fewer = predict_class_start(students, cores=cores, cpu_per_lab=cpu)
    more = predict_class_start(students, cores=cores + 1, cpu_per_lab=cpu)
    assert more.all_ready_s <= fewer.all_ready_s + 1e-9
    # Nobody is ready before their own start could have finished.
    assert min(fewer.ready_s) >= cpu - 1e-9


def test_labs_in_memory_keeps_room_for_the_rest() -> None:
    assert labs_in_memory(2.0) == 0
    assert 0 < labs_in_memory(8.0) < labs_in_memory(24.0)


def test_the_command_prints_and_writes_the_prediction(capsys: pytest.CaptureFixture) -> None:
    code = loadtest_main(["class-start", "--students", "40", "--cores", "2",
                          "--cpu-per-lab", "2", "--memory-gib", "24", "--json", "-"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Class start: 40 students" in out and "GiB hold about" in out
    data = json.loads(out[out.index("{"):])
    assert data["students"] == 40 and data["parallel"] == 2 and len(data["ready_s"]) == 40
    assert data["all_ready_s"] == pytest.approx(predict_class_start(
        40, cores=2, cpu_per_lab=2).all_ready_s)
    assert loadtest_main(["class-start", "--students", "0"]) == 2

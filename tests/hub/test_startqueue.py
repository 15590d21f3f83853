"""The start queue: a few labs at a time, the rest in order, with honest estimates."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.startqueue import AHEAD, NOW, StartQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_at_most_parallel_start_and_the_rest_wait_in_order() -> None:
    queue = StartQueue(2, clock=Clock())
    tickets = [queue.join(f"s{i}") for i in range(5)]
    assert [t.starting for t in tickets] == [True, True, False, False, False]
    assert [queue.place(t).place for t in tickets[2:]] == [1, 2, 3]
    queue.leave(tickets[1], ok=True)
    assert tickets[2].starting and not tickets[3].starting
    queue.leave(tickets[0], ok=False)
    assert tickets[3].starting
    assert queue.started_total == 1 and queue.failed_total == 1


@settings(max_examples=200, deadline=None)
@given(
    parallel=st.integers(1, 4),
    ahead_parallel=st.integers(1, 4),
    script=st.lists(
        st.one_of(
            st.tuples(st.just("join"), st.sampled_from([NOW, AHEAD])),
            st.tuples(st.just("finish"), st.integers(0, 50)),
            st.tuples(st.just("cancel"), st.integers(0, 50)),
            st.tuples(st.just("promote"), st.integers(0, 50)),
        ),
        max_size=60,
    ),
)
def test_invariants_under_any_sequence(parallel, ahead_parallel, script) -> None:
    """Never more than the limits start; a ticket starts only when nobody before it waits."""
    queue = StartQueue(parallel, ahead_parallel=ahead_parallel, clock=Clock())
    tickets = []
    grants = []
    for action, arg in script:
        before = {id(t) for t in queue.starting}
        line = queue.waiting
        if action == "join":
            tickets.append(queue.join(f"u{len(tickets)}", arg))
        elif tickets:
            ticket = tickets[arg % len(tickets)]
            if action == "finish":
                queue.leave(ticket, ok=True)
            elif action == "cancel" and ticket.waiting:
                queue.leave(ticket)
            elif action == "promote":
                queue.promote(ticket)
        started = [t for t in queue.starting if id(t) not in before]
        grants += started
        assert len(queue.starting) <= parallel
        assert sum(t.tier == AHEAD for t in queue.starting) <= min(ahead_parallel, parallel)
        # Whoever started now came first in the line of before (or is the newcomer).
        still = queue.waiting
        for ticket in started:
            for other in still:
                if other.tier == ticket.tier:
                    assert other.number > ticket.number
                if ticket.tier == AHEAD:
                    assert other.tier != NOW or other is ticket
        # Nobody waits while there is room for them.
        if still and len(queue.starting) < parallel:
            assert still[0].tier == AHEAD
        del line
    # Places are 1..n in the order they will start.
    assert [queue.place(t).place for t in queue.waiting] == list(range(1, len(queue.waiting) + 1))


def test_estimates_come_from_measured_start_times() -> None:
    clock = Clock()
    queue = StartQueue(2, start_seconds=10, clock=clock)
    first, second = queue.join("a"), queue.join("b")
    third, fourth, fifth = queue.join("c"), queue.join("d"), queue.join("e")
    # Two start at once and take 10 s each: c and d start at +10, e at +20.
    assert queue.place(third).wait_s == pytest.approx(10)
    assert queue.place(fourth).wait_s == pytest.approx(10)
    assert queue.place(fifth).wait_s == pytest.approx(20)
    assert queue.estimate(fifth) == pytest.approx(30)
    clock.now += 4
    assert queue.place(fifth).wait_s == pytest.approx(16)  # the estimate counts down
    # Starts on this machine really take 30 s: the average moves towards it.
    clock.now += 26
    queue.leave(first, ok=True)
    queue.leave(second, ok=True)
    assert queue.average_s == pytest.approx(10 + 0.3 * 20 + 0.3 * (30 - 16))
    assert third.starting and fourth.starting
    assert queue.place(fifth).wait_s == pytest.approx(queue.average_s)


def test_a_class_started_ahead_is_staggered_and_people_waiting_go_first() -> None:
    queue = StartQueue(2, ahead_parallel=1, start_seconds=10, clock=Clock())
    ahead = [queue.join(f"a{i}", AHEAD) for i in range(3)]
    assert [t.starting for t in ahead] == [True, False, False]  # one at a time
    student = queue.join("late", NOW)
    assert student.starting  # the free place goes to someone who waits for it
    other = queue.join("later", NOW)
    assert queue.place(other).place == 1  # before the two still ahead
    queue.leave(student, ok=True)
    assert other.starting and ahead[1].waiting
    # The second pre-start waits for the first (staggered), not just for a place.
    assert queue.place(ahead[1]).wait_s == pytest.approx(queue.average_s)
    queue.promote(ahead[2])  # its student arrived
    assert queue.waiting[0] is ahead[2]


def test_a_cancelled_wait_gives_its_place_up() -> None:
    async def scenario() -> None:
        queue = StartQueue(1, clock=Clock())
        running = queue.join("a")
        waiting = queue.join("b")
        behind = queue.join("c")
        task = asyncio.create_task(queue.wait(waiting))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert queue.place(behind).place == 1
        watcher = asyncio.create_task(queue.changed(timeout=30))
        await asyncio.sleep(0)
        queue.leave(running, ok=True)
        assert await watcher is True
        assert behind.starting
        await asyncio.wait_for(queue.wait(behind), 1)

    asyncio.run(scenario())


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        StartQueue(0)
    with pytest.raises(ValueError):
        StartQueue(1).join("x", "later")

"""Review of issue 20: the nemesis checkers must not pass a bad history."""

from __future__ import annotations

from tests.nemesis.checker import Counter, check_counter, linearizable
from tests.nemesis.history import FAIL, INFO, OK, History, Op
from tests.nemesis.scenarios import check


def inc(start: float, end: float | None, status: str, value: int | None = None) -> Op:
    return Op(
        0,
        "k",
        "inc",
        None,
        invoke=start,
        complete=None if status == INFO else end,
        status=status,
        value=value,
    )


def test_a_not_run_increment_that_was_applied_is_caught_by_the_counter_check() -> None:
    """An increment said "not-run" (fail) was applied: the next acknowledged increment
    returned 3 although only one other increment that may have run had begun. An unknown
    increment invoked *after* that answer keeps the final value's arithmetic whole
    (final 3 = 2 ok + 1 unknown), and check_counter looks at the final value only in
    aggregate and never bounds an increment's value by the increments begun before it
    ended (it does so for reads only). So it passes the history, and the suite's counter
    runs (scenarios.check, kind "counter": check_counter alone, no linearizability search)
    pass it too -- although the Counter model's own WGL search proves it impossible."""
    ops = History.of(
        [
            inc(0, 1, OK, 1),
            inc(2, 3, FAIL),  # said not-run... but applied: 2
            inc(4, 5, OK, 3),  # 3, ended at 5
            inc(6, None, INFO),  # begun after 3 was handed out: cannot explain the 2
        ]
    ).ops
    assert linearizable(ops, Counter()).linearizable is False  # the history is bad
    assert check_counter(ops, final=3), "check_counter passed a not-run op that was applied"
    assert check(History.of(ops), "counter", {"k": 3}), "the suite's counter check passed it"

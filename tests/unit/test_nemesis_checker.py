"""The nemesis suite's checkers, on histories planted to be good or bad: a checker that could
not fail would prove nothing."""

from __future__ import annotations

import random

from tests.nemesis.checker import (
    Counter,
    Register,
    check_counter,
    check_register_reads,
    check_sessions,
    linearizable,
)
from tests.nemesis.history import FAIL, INFO, OK, History, Op


def op(f: str, start: float, end: float | None, status: str = OK, value=None, arg=None) -> Op:
    return Op(
        0,
        "k",
        f,
        arg,
        invoke=start,
        complete=None if status == INFO else end,
        status=status,
        value=value,
    )


def numbered(*ops: Op) -> list[Op]:
    return History.of(ops).ops


# ------------------------------------------------------------------ registers


def test_a_sequential_register_history_is_linearizable() -> None:
    ops = numbered(
        op("write", 0, 1, arg=1),
        op("read", 2, 3, value=1),
        op("cas", 4, 5, arg=[1, 2], value=True),
        op("read", 6, 7, value=2),
        op("cas", 8, 9, arg=[1, 3], value=False),
    )
    assert linearizable(ops, Register()).linearizable is True


def test_a_stale_read_is_caught() -> None:
    ops = numbered(
        op("write", 0, 1, arg=1),
        op("write", 2, 3, arg=2),
        op("read", 4, 5, value=1),  # 2 was acknowledged before this read began
    )
    verdict = linearizable(ops, Register())
    assert verdict.linearizable is False
    assert "#2" in verdict.why


def test_concurrent_operations_may_take_either_order() -> None:
    ops = numbered(
        op("write", 0, 10, arg=1),
        op("write", 1, 9, arg=2),
        op("read", 11, 12, value=1),  # the write of 2 took effect first
    )
    assert linearizable(ops, Register()).linearizable is True


def test_a_failed_write_never_happened() -> None:
    ops = numbered(
        op("write", 0, 1, arg=1),
        op("write", 2, 3, status=FAIL, arg=2),
        op("read", 4, 5, value=2),  # reads what "did not run": the planted bug
    )
    assert linearizable(ops, Register()).linearizable is False


def test_an_unknown_write_may_land_late_or_never() -> None:
    late = numbered(
        op("write", 0, 1, arg=1),
        op("write", 2, None, status=INFO, arg=2),
        op("read", 3, 4, value=1),
        op("read", 5, 6, value=2),  # it landed after all
        op("read", 7, 8, value=2),
    )
    assert linearizable(late, Register()).linearizable is True
    never = numbered(
        op("write", 0, 1, arg=1),
        op("write", 2, None, status=INFO, arg=2),
        op("read", 3, 4, value=1),
    )
    assert linearizable(never, Register()).linearizable is True
    back = numbered(
        op("write", 0, 1, arg=1),
        op("write", 2, None, status=INFO, arg=2),
        op("read", 3, 4, value=2),
        op("read", 5, 6, value=1),  # once seen, 2 cannot be undone
    )
    assert linearizable(back, Register()).linearizable is False


def test_a_cas_that_claimed_success_on_the_wrong_value_is_caught() -> None:
    ops = numbered(
        op("write", 0, 1, arg=1),
        op("cas", 2, 3, arg=[5, 6], value=True),
    )
    assert linearizable(ops, Register()).linearizable is False


def test_the_search_gives_up_rather_than_pass() -> None:
    # Many unknown writes, all concurrent, and reads no order explains: a large search.
    ops = [op("write", i * 0.01, None, status=INFO, arg=i) for i in range(40)]
    ops += [op("read", 10 + i, 10.5 + i, value=100 + i) for i in range(3)]
    verdict = linearizable(numbered(*ops), Register(), budget=2000)
    assert verdict.linearizable is not True


def test_random_sequential_histories_pass() -> None:
    rng = random.Random(7)
    for _ in range(50):
        value, ops, t = None, [], 0.0
        for _ in range(30):
            kind = rng.choice(["read", "write", "cas"])
            if kind == "read":
                ops.append(op("read", t, t + 0.5, value=value))
            elif kind == "write":
                value = rng.randrange(5)
                ops.append(op("write", t, t + 0.5, arg=value))
            else:
                expected, new = rng.randrange(5), rng.randrange(5)
                swapped = value == expected
                ops.append(op("cas", t, t + 0.5, arg=[expected, new], value=swapped))
                value = new if swapped else value
            t += 1
        assert linearizable(numbered(*ops), Register()).linearizable is True


def test_register_reads_of_values_never_written_are_caught() -> None:
    ops = numbered(op("write", 0, 1, arg=1), op("read", 2, 3, value=9))
    assert check_register_reads(ops)
    assert not check_register_reads(numbered(op("write", 0, 1, arg=1), op("read", 2, 3, value=1)))


# ------------------------------------------------------------------ counters


def incs(*values: tuple[float, float | None, str, int | None]) -> list[Op]:
    return numbered(*(op("inc", s, e, st, v) for s, e, st, v in values))


def test_a_good_counter_history_passes_both_checkers() -> None:
    ops = incs(
        (0, 1, OK, 1), (2, 3, OK, 2), (2.5, None, INFO, None), (4, 5, OK, 4), (6, 7, FAIL, None)
    )
    ops.append(op("read", 8, 9, value=4))
    ops = numbered(*ops)
    assert check_counter(ops, final=4) == []
    assert linearizable(ops, Counter()).linearizable is True


def test_a_value_handed_out_twice_is_caught() -> None:
    ops = incs((0, 2, OK, 1), (1, 3, OK, 1))
    assert any("handed out 2 times" in a for a in check_counter(ops, final=2))
    assert linearizable(ops, Counter()).linearizable is False


def test_values_out_of_real_time_order_are_caught() -> None:
    ops = incs((0, 1, OK, 2), (2, 3, OK, 1))
    assert any("went back in time" in a for a in check_counter(ops, final=2))


def test_a_lost_acknowledgement_is_caught() -> None:
    ops = incs((0, 1, OK, 1), (2, 3, OK, 2), (4, 5, OK, 3))
    assert any("lost" in a for a in check_counter(ops, final=2))


def test_a_not_run_increment_that_was_applied_is_caught() -> None:
    # Two acknowledged, one said not-run, and the counter ends at 3.
    ops = incs((0, 1, OK, 1), (2, 3, FAIL, None), (4, 5, OK, 3))
    anomalies = check_counter(ops, final=3)
    assert any("said not-run was applied" in a for a in anomalies)
    # The same with the third one unknown instead: allowed.
    ops = incs((0, 1, OK, 1), (2, None, INFO, None), (4, 5, OK, 3))
    assert check_counter(ops, final=3) == []


def test_stale_and_backward_reads_are_caught() -> None:
    ops = numbered(*incs((0, 1, OK, 1), (2, 3, OK, 2)), op("read", 4, 5, value=1))
    assert any("went back in time" in a for a in check_counter(ops, final=2))
    ops = numbered(
        *incs((0, None, INFO, None)), op("read", 1, 2, value=1), op("read", 3, 4, value=0)
    )
    assert any("another read had seen" in a for a in check_counter(ops, final=1))


def test_a_read_from_the_future_is_caught() -> None:
    ops = numbered(*incs((0, 1, OK, 1)), op("read", 2, 3, value=5))
    assert any("that may have run had begun" in a for a in check_counter(ops, final=1))


# ------------------------------------------------------------------ reads on replicas


def session(client: int, f: str, start: float, end: float, value: int, status: str = OK) -> Op:
    made = op(f, start, end, status, value)
    made.client = client
    return made


def test_sessions_that_read_their_writes_and_go_forward_are_clean() -> None:
    ops = numbered(
        session(1, "append", 0, 1, 1),
        session(2, "read", 0.5, 1.5, 0),  # another client may lag
        session(1, "read", 2, 3, 1),
        session(2, "append", 3, 4, 2),
        session(1, "read", 4.5, 5, 1),  # stale for client 1, but not older than its own
        session(2, "read", 5, 6, 2),
    )
    assert check_sessions(ops, 2) == []


def test_a_read_older_than_the_clients_own_write_is_caught() -> None:
    ops = numbered(session(1, "append", 0, 1, 1), session(1, "read", 2, 3, 0))
    assert any("read-your-writes" in a for a in check_sessions(ops, 1))


def test_a_read_that_goes_back_is_caught() -> None:
    ops = numbered(
        session(2, "append", 0, 1, 1),
        session(2, "append", 1, 2, 2),
        session(1, "read", 3, 4, 2),
        session(1, "read", 5, 6, 1),
    )
    assert any("monotonic" in a for a in check_sessions(ops, 2))


def test_a_read_staler_than_the_bound_and_a_lost_append_are_caught() -> None:
    ops = numbered(session(2, "append", 0, 1, 1), session(1, "read", 5, 6, 0))
    assert check_sessions(ops, 1) == []  # no promise across clients without a bound
    assert any("staler than the bound" in a for a in check_sessions(ops, 1, bound=1.25))
    assert any("lost" in a for a in check_sessions(ops, 0))


def test_a_read_of_lines_nobody_appended_is_caught() -> None:
    ops = numbered(session(1, "append", 0, 1, 1), session(2, "read", 0.5, 0.8, 3))
    assert any("only 1 appends" in a for a in check_sessions(ops, 1))

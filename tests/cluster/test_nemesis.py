"""The nemesis suite, short: three nodes and one Valkey under each fault, every operation
recorded and checked (tests/nemesis). ``make test-faults`` runs the long versions and writes
docs/reliability.md.

What each test shows, with the default settings (LEASE_TTL 2 s):

- an owner killed, paused 8 s, or cut off from Valkey 10 s: its objects answer ok again
  through the other nodes within 3 s of the fault's start, and keep answering;
- a pause shorter than a second moves nothing;
- Valkey killed and restarted: every error answer says X-Outcome, and "not-run" is never
  wrong (no operation said not-run was applied: the counter check);
- the owner unreachable by its peers, the nodes split from each other, the owner's clock
  skewed 30 s or running 1 % fast or slow: no anomaly;
- in every history: no anomaly at all (linearizable registers; for the counters no value
  handed out twice, none out of real-time order, no acknowledged increment lost, nothing
  applied twice);
- reads on replicas (the replica workload: a log appended on the owner, counted on every
  node's replica) under the owner killed, paused or cut off from Valkey, and a replica's
  node cut off from Valkey: each client reads its own writes and never goes back, no read is
  staler than the bound, nothing acknowledged is lost, and replicas did serve the reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.nemesis.cluster import faketime_available
from tests.nemesis.scenarios import Run, fault, run

RECOVERY = 3.0


def summary(result: Run) -> str:
    counts = result.counts
    recovery = "-" if result.recovery is None else f"{result.recovery:.2f}s"
    return (
        f"{result.fault.title} [{result.workload}]: {len(result.history)} ops, ok "
        f"{counts['ok']}, fail {counts['fail']}, info {counts['info']}, recovery {recovery}, "
        f"kept {result.kept}, errors {result.errors}, anomalies {result.anomalies[:5]}"
    )


def clean(result: Run) -> None:
    print(summary(result))
    assert result.anomalies == [], summary(result)
    assert result.unlabelled == 0, f"error answers without X-Outcome: {result.errors}"
    assert result.counts["ok"] > 50, summary(result)


def recovered(result: Run) -> None:
    clean(result)
    assert result.victims, "the target owned no key when the fault began"
    assert result.recovery is not None, f"never served again: {summary(result)}"
    assert result.recovery <= RECOVERY, summary(result)
    assert result.kept is not None and result.kept >= 0.97, summary(result)


async def test_a_killed_owner_is_replaced_within_3s(tmp_path: Path) -> None:
    recovered(await run(tmp_path, fault("kill", 5.0)))


async def test_a_paused_owner_gives_its_objects_up_within_3s(tmp_path: Path) -> None:
    result = await run(tmp_path, fault("pause", 8.0))
    recovered(result)
    target = result.stats[0]
    assert target["leases_lost"] + target["self_fenced"] > 0  # it found out when it resumed


async def test_an_owner_cut_off_from_valkey_fences_itself_within_3s(tmp_path: Path) -> None:
    result = await run(tmp_path, fault("redis-cut", 10.0))
    recovered(result)
    assert result.stats[0]["self_fenced"] > 0


async def test_an_owner_cut_off_from_valkey_keeps_registers_linearizable(tmp_path: Path) -> None:
    recovered(await run(tmp_path, fault("redis-cut", 6.0), "register"))


async def test_a_pause_under_a_second_moves_nothing(tmp_path: Path) -> None:
    result = await run(tmp_path, fault("pause-short", 0.8), cooldown=2.0)
    clean(result)
    assert sum(s["lease_takeovers"] for s in result.stats) == 0, result.stats
    assert result.stats[0]["self_fenced"] == 0 and result.stats[0]["leases_lost"] == 0


async def test_every_error_says_whether_it_ran_when_valkey_dies(tmp_path: Path) -> None:
    result = await run(tmp_path, fault("valkey-kill", 4.0))
    clean(result)
    assert result.errors, "Valkey's death produced no error answers at all?"
    assert any(key.endswith("not-run") for key in result.errors), result.errors


async def test_an_owner_its_peers_cannot_reach_stays_correct(tmp_path: Path) -> None:
    clean(await run(tmp_path, fault("isolate", 4.0), "register"))


async def test_nodes_split_from_each_other_stay_correct(tmp_path: Path) -> None:
    clean(await run(tmp_path, fault("partition", 4.0)))


@pytest.mark.skipif(not faketime_available(), reason="libfaketime (Debian's faketime) missing")
@pytest.mark.parametrize("skew", ["clock+30s", "clock-fast", "clock-slow"])
async def test_an_owner_on_a_skewed_clock_is_fenced_correctly(tmp_path: Path, skew: str) -> None:
    recovered(await run(tmp_path, fault(skew, 4.0)))


def served_by_replicas(result: Run) -> None:
    clean(result)
    share = result.replica_share
    assert share is not None and share > 0.2, f"replicas served {share} of the reads"


@pytest.mark.parametrize(
    "kind,length", [("kill", 4.0), ("pause", 4.0), ("redis-cut", 5.0), ("replica-cut", 5.0)]
)
async def test_replica_reads_keep_their_promises(tmp_path: Path, kind: str, length: float) -> None:
    served_by_replicas(await run(tmp_path, fault(kind, length), "replica"))

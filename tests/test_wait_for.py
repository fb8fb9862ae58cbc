"""S4.9's probe rules on their own (`wait_for`): which probes are well formed,
who checks each edge, which join of a cycle is its victim, and how the
deadlock is described. The protocol itself runs in test_cross_tree_deadlocks
and test_deadlock_oracle."""

from __future__ import annotations

from stepped_temporal.wait_for import (
    BREAK,
    CONFIRM,
    MAX_HOPS,
    PENDING,
    SHARED,
    WAITS,
    Hop,
    Probe,
)

#: c1 pending in K2 behind R2; R2 waits on c2; c2 pending in K1 behind R1; R1 waits on c1
CYCLE = [
    Hop("c1", PENDING, "R2", "K2", "2026-12-06T10:00:00.000001+00:00"),
    Hop("R2", WAITS, "c2"),
    Hop("c2", PENDING, "R1", "K1", "2026-12-06T10:00:00.500000+00:00"),
    Hop("R1", WAITS, "c1"),
]


def test_a_closed_chain_from_its_origin_is_well_formed():
    probe = Probe("c1", CYCLE)
    assert probe.well_formed() and probe.closed()
    assert Probe("c1", CYCLE[:2]).well_formed()  # a seek under way
    assert not Probe("c1", CYCLE[:2], phase=CONFIRM).well_formed()  # confirms only cycles


def test_anything_else_is_not():
    assert not Probe("c1", []).well_formed()
    assert not Probe("R2", CYCLE).well_formed()  # not from its origin
    assert not Probe("c1", [CYCLE[0], CYCLE[2]]).well_formed()  # a broken chain
    assert not Probe("c1", [Hop("c1", "sideways", "R2", "K2")]).well_formed()
    assert not Probe("c1", [Hop("c1", PENDING, "R2")]).well_formed()  # a lane without a key
    assert not Probe("c1", CYCLE, phase="boom").well_formed()
    assert not Probe("c1", CYCLE, phase=CONFIRM, at=4).well_formed()
    long = [Hop("c1", WAITS, "c1")] * (MAX_HOPS + 1)
    assert not Probe("c1", long).well_formed()


def test_the_victim_is_the_latest_join_then_the_greatest_id():
    assert Probe("c1", CYCLE).victim() == CYCLE[2]
    tied = [CYCLE[0], CYCLE[1], Hop("c2", PENDING, "R1", "K1", CYCLE[0].joined_at), CYCLE[3]]
    assert Probe("c1", tied).victim().action_id == "c2"
    # every probe around the same cycle agrees, wherever it started
    rotated = CYCLE[2:] + CYCLE[:2]
    assert Probe("c2", rotated).victim() == Probe("c1", CYCLE).victim()


def test_each_edge_is_checked_by_whoever_knows_it():
    assert CYCLE[0].owner == "stepped-lane/K2"  # a pending action leaves only through its lane
    assert CYCLE[1].owner == "R2"  # what a step waits on, its action knows
    assert Hop("f", SHARED, "R2", "K2").owner == "f"  # a follower may leave by cancel


def test_the_confirm_pass_walks_the_cycle_then_asks_the_victims_lane():
    probe = Probe("c1", CYCLE).confirming()
    owners = []
    while probe.phase == CONFIRM:
        owner, probe = probe.next_owner()
        owners.append(owner)
    assert owners == ["R2", "stepped-lane/K1", "R1", "stepped-lane/K1"]
    assert probe.phase == BREAK and probe.path[probe.at] == probe.victim()


def test_a_sharing_victim_is_deadlocked_by_its_lane_not_by_itself():
    """The follower confirms its own edge, but only its lane can take it out."""
    shared = [
        Hop("f", SHARED, "R2", "K2", "2026-12-06T10:00:01.000000+00:00"),
        Hop("R2", WAITS, "c2"),
        Hop("c2", PENDING, "R1", "K1", "2026-12-06T10:00:00.000000+00:00"),
        Hop("R1", WAITS, "f"),
    ]
    probe = Probe("c2", shared[2:] + shared[:2]).confirming(3)
    owner, breaking = probe.next_owner()
    assert (owner, breaking.phase, breaking.path[breaking.at].action_id) == (
        "stepped-lane/K2",
        BREAK,
        "f",
    )


def test_the_message_starts_at_the_victim_and_names_every_action_and_key():
    text = Probe("c1", CYCLE).describe()
    assert text.startswith("action c2 closed a cycle of waits across lanes 'K1', 'K2': ")
    assert "c2 (pending in lane 'K1') waits for R1; R1 waits for c1; " in text
    assert text.endswith("R2 waits for c2 — it would wait for itself")

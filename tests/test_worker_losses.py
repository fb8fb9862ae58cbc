"""Poison pills end (issue 27, item 5; S8.2; losses.py): the tally and the setting.

The behaviour itself — units that kill their worker, real processes restarted as they
die — is proven by tests/reliability/test_poison_pills.py. Here: the streak of lost
workers kept in `stepped_step_records` (store/records.py) on SQLite and PostgreSQL, and
`configure(worker_loss_limit=...)` with its command-line twin.
"""

from __future__ import annotations

import pytest

import stepped_temporal as stepped
from stepped_temporal import cli, config
from stepped_temporal.store import records, transaction


def test_a_streak_of_lost_workers_counts_each_loss_once_and_ends_at_a_gap(stepped_db_env):
    """Regular activities: attempt n's loss follows attempt n-1's; an attempt that was
    not lost (its code failed) breaks the streak; counting a loss twice counts it once."""
    with transaction() as session:
        assert records.count_loss(session, "run/lost/step/1", "A/1/x", "1", "0") == 1
    with transaction() as session:
        assert records.count_loss(session, "run/lost/step/1", "A/1/x", "2", "1") == 2
        assert records.count_loss(session, "run/lost/step/1", "A/1/x", "2", "1") == 2  # again
        assert records.count_loss(session, "run/lost/step/1", "A/1/x", "3", "2") == 3
        assert records.count_loss(session, "run/lost/step/1", "A/1/x", "5", "4") == 1  # 4 failed
        assert records.count_loss(session, "run/lost/step/2", "A/1/x", "6", "5") == 1  # other unit


def test_a_local_streak_goes_on_until_forgotten(stepped_db_env):
    """A local prepare's losses (no attempt numbers to follow) go on until a failure of
    code or database ends the streak (`forget`); a regular attempt after them starts
    a streak of its own."""
    key = "run/lost/step/0"
    with transaction() as session:
        assert records.count_loss(session, key, "A/1/x", "task/4/6", None) == 1
        assert records.count_loss(session, key, "A/1/x", "task/7/9", None) == 2
        records.forget(session, key)
        assert records.count_loss(session, key, "A/1/x", "task/12/14", None) == 1
        assert records.count_loss(session, key, "A/1/x", "1", "0") == 1


def test_the_limit_is_configured_by_keyword_and_on_the_command_line(monkeypatch):
    """`configure(worker_loss_limit=N)` (default 5, 0: never give up); the worker's
    `--worker-loss-limit` or STEPPED_WORKER_LOSS_LIMIT, left out: what the app set."""
    saved = config.settings()
    try:
        assert config.settings().worker_loss_limit == 5
        stepped.configure(worker_loss_limit=0)
        assert config.settings().worker_loss_limit == 0
        with pytest.raises(ValueError, match="0 or more"):
            stepped.configure(worker_loss_limit=-1)
        with pytest.raises(TypeError, match="takes an int"):
            stepped.configure(worker_loss_limit=True)
    finally:
        config._settings = saved
    worker = ["worker", "--app", "myapp"]
    assert cli._parser().parse_args(worker).worker_loss_limit is None
    assert cli._parser().parse_args([*worker, "--worker-loss-limit", "3"]).worker_loss_limit == 3
    monkeypatch.setenv("STEPPED_WORKER_LOSS_LIMIT", "7")
    assert cli._parser().parse_args(worker).worker_loss_limit == 7

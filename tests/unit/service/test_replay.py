"""replay's Job and result: its own group, HTTP only when asked, and the printed summary."""

from __future__ import annotations

from collections import Counter

from consumer import config
from consumer.core.summary import RunSummary
from consumer.policy import bundled_policy_text, compile_policy, load_policy
from consumer.service.replay import ReplayOptions, ReplayResult, _Replay
from consumer.service.replay_decider import ReplayCounts

SETTINGS = config.load(env={})
POLICY = compile_policy(load_policy(bundled_policy_text()))


class TestReplayJob:
    def test_a_run_reads_and_commits_in_a_group_of_its_own(self) -> None:
        """The live group's offsets never move: replay's clients use `<group>.replay.<name>`."""
        job = _Replay(SETTINGS, POLICY, ReplayOptions(name="close-electronics"))
        assert job.settings.group_id == f"{SETTINGS.group_id}.replay.close-electronics"
        assert job.settings.input_topic == SETTINGS.input_topic

    def test_http_is_served_only_on_the_port_asked_for(self) -> None:
        """--http-port, or nothing: a one-off job does not take the live worker's port."""
        assert _Replay(SETTINGS, POLICY, ReplayOptions(name="r")).http_port is None
        assert _Replay(SETTINGS, POLICY, ReplayOptions(name="r", http_port=9500)).http_port == 9500


class TestReplayResult:
    def test_the_summary_says_what_was_read_published_and_left_out(self) -> None:
        """Dead letters are the ones left out (the live worker sent them), not any produced."""
        summary = RunSummary(started=0.0)
        summary.outcomes.update({"REJECTED": 3})
        summary.clusters.update({"electronics": 3})
        summary.reasons.update({"import_closed": 3})
        counts = ReplayCounts(read=10, unchanged=5, dead_letters=Counter({"truncated": 2}))
        result = ReplayResult("r1", "g.replay.r1", summary, counts, seconds=2.0)
        assert result.summary_text() == (
            "replay r1 (group g.replay.r1): read 10 listings in 2.0s (5/s), published 3 decisions, "
            "unchanged 5, dead letters 2 (not re-sent)\n"
            "by outcome: REJECTED=3\n"
            "by cluster: electronics=3\n"
            "rejections by reason: import_closed=3\n"
            "dead letters by error code: truncated=2"
        )

"""ReplayDecider: the worker's Decider, then replay's filter (changed only), header, rate and progress."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from consumer.codec import AvroCodec
from consumer.core.pipeline import Decided, tally
from consumer.core.records import Provenance, RawRecord
from consumer.policy import CompiledPolicy
from consumer.service.policy_watch import load_policy_file
from consumer.service.replay_decider import REPLAY_HEADER, ReplayDecider
from tests.unit.core.test_pipeline_sets import RECORDS as SET_RECORDS
from tests.unit.core.test_pipeline_shadow import (
    CANDIDATE,
    LIVE,
    OVERLAPPING,
    RECORDS,
    REORDERED,
    REWORDED,
)
from tests.unit.policy.test_evaluate import compiled
from tests.unit.policy.test_sets import write_indonesia_set

CODEC = AvroCodec()
RUN = Provenance("REPLAY", "run-1", None)
#: The three listings and one record that cannot be decoded.
BATCH = [*RECORDS, RawRecord("in", 0, len(RECORDS), None, None, b"", ())]


def replay(
    policy: CompiledPolicy, baseline: CompiledPolicy | None
) -> tuple[ReplayDecider, list[Decided]]:
    decider = ReplayDecider(CODEC, policy, RUN, baseline=baseline)
    results = decider.decide(BATCH, 0)
    assert all(isinstance(r, Decided) for r in results)
    return decider, [r for r in results if isinstance(r, Decided)]


class TestChangedOnly:
    def test_publishes_the_decisions_the_baseline_makes_otherwise(self) -> None:
        """The dress's rule is renamed and the phone newly rejected; the local listing is the
        same under both, so it is counted as unchanged; the bad record is counted, not sent."""
        decider, published = replay(CANDIDATE, baseline=LIVE)
        assert [r.listing_id for r in published] == ["l-dress", "l-phone"]
        assert decider.counts.read == 4
        assert decider.counts.unchanged == 1
        assert sum(decider.counts.dead_letters.values()) == 1

    @pytest.mark.parametrize(
        ("policy", "baseline"),
        [(LIVE, LIVE), (REORDERED, compiled(OVERLAPPING)), (REWORDED, compiled(OVERLAPPING))],
        ids=["same-policy", "reordered-rules", "reworded-messages"],
    )
    def test_a_policy_that_decides_the_same_publishes_nothing(
        self, policy: CompiledPolicy, baseline: CompiledPolicy
    ) -> None:
        """Unchanged is judgement.changed: another order of rules or other words are no change."""
        decider, published = replay(policy, baseline)
        assert published == []
        assert decider.counts.unchanged == 3

    def test_without_a_baseline_every_decision_is_published(self) -> None:
        """No baseline, no comparison: only dead letters are left out."""
        decider, published = replay(CANDIDATE, baseline=None)
        assert len(published) == 3
        assert decider.counts.unchanged == 0

    @pytest.mark.parametrize("baseline", [LIVE, None], ids=["baseline", "no-baseline"])
    def test_results_carry_the_replay_header_and_no_shadow(
        self, baseline: CompiledPolicy | None
    ) -> None:
        """The baseline runs as a shadow policy but is stripped: replay's metrics count no
        shadow series."""
        _decider, published = replay(CANDIDATE, baseline)
        assert published
        assert all(r.shadow is None for r in published)
        assert all(r.headers[-1] == (REPLAY_HEADER, b"run-1") for r in published)
        counted = tally(published)
        assert not counted.shadow_decisions
        assert not counted.disagreements

    def test_each_record_is_decoded_once(self) -> None:
        """The baseline's verdict comes from the same decoded row as the policy's."""
        with mock.patch.object(
            AvroCodec, "read_listing", autospec=True, side_effect=AvroCodec.read_listing
        ) as read:
            replay(CANDIDATE, baseline=LIVE)
        assert read.call_count == len(BATCH)

    def test_progress_is_reported_per_batch_read(self) -> None:
        """Every record read counts, published or not."""
        seen: list[int] = []
        decider = ReplayDecider(CODEC, CANDIDATE, RUN, baseline=LIVE, progress=seen.append)
        decider.decide(BATCH, 0)
        assert seen == [len(BATCH)]


class TestReplaced:
    def test_the_same_policy_keeps_the_decider(self) -> None:
        """Nothing to rebuild."""
        decider = ReplayDecider(CODEC, CANDIDATE, RUN, baseline=LIVE)
        assert decider.replaced(CANDIDATE, None) is decider

    def test_another_policy_keeps_the_baseline_and_the_counts(self) -> None:
        """Still a replay: compared against the same baseline, counted in the same counts."""
        decider = ReplayDecider(CODEC, CANDIDATE, RUN, baseline=LIVE)
        decider.decide(BATCH, 0)
        swapped = decider.replaced(LIVE, None)
        assert isinstance(swapped, ReplayDecider)
        assert swapped.counts is decider.counts
        assert swapped.shadow_policy is LIVE
        assert swapped.decide(BATCH, 0) == []
        assert decider.counts.read == 8
        assert decider.counts.unchanged == 1 + 3

    def test_a_shadow_policy_is_refused(self) -> None:
        """The baseline is replay's shadow; a second one has no place."""
        decider = ReplayDecider(CODEC, CANDIDATE, RUN, baseline=LIVE)
        with pytest.raises(ValueError, match="shadow policy cannot run beside the baseline"):
            decider.replaced(CANDIDATE, LIVE)


class TestPolicySet:
    @pytest.mark.parametrize("set_is", ["policy", "baseline"], ids=["set-policy", "set-baseline"])
    def test_changed_only_with_a_set_on_either_side(self, tmp_path: Path, set_is: str) -> None:
        """Against the AKAR layer alone, the set changes the cheap phone (newly rejected) and the
        cheap shirts (one more reason); the dear phone is unchanged."""
        indonesia = load_policy_file(write_indonesia_set(tmp_path))
        akar = indonesia.layers[0]
        policy, baseline = (indonesia, akar) if set_is == "policy" else (akar, indonesia)
        decider = ReplayDecider(CODEC, policy, RUN, baseline=baseline)
        results = decider.decide(SET_RECORDS, 0)
        published = [r for r in results if isinstance(r, Decided)]
        assert [r.listing_id for r in published] == ["l-0", "l-1", "l-3"]
        assert decider.counts.unchanged == 1

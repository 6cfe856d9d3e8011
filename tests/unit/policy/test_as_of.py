"""Evaluation as of a time: rule windows checked against a given instant instead of event_time."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from consumer.codec import AvroCodec
from consumer.core.pipeline import Decided, Decider, decide_batch
from consumer.core.records import Provenance, RawRecord
from consumer.policy import evaluate, explain
from consumer.policy.evaluate import scan
from consumer.policy.load import parse_as_of
from tests.unit.listings import epoch_ms, make_listing
from tests.unit.policy.test_evaluate import compiled, reject

JAKARTA = ZoneInfo("Asia/Jakarta")
#: A closure effective from 2021-08-03 (00:00 Asia/Jakarta, 2021-08-02T17:00Z).
CLOSURE = reject("closure", cross_border=True) | {"effective_from": "2021-08-03"}
#: Ends 2022-01-01 (00:00 Asia/Jakarta).
EXPIRED = reject("expired", cross_border=True) | {"effective_until": "2022-01-01"}
CREATED_2020 = make_listing(event_time_ms=epoch_ms("2020-05-01T08:00:00+07:00"))
CODEC = AvroCodec()


class TestEvaluateAsOf:
    @pytest.mark.parametrize(
        ("rule", "as_of", "outcome"),
        [
            (CLOSURE, None, "APPROVED"),
            (CLOSURE, "2021-09-01T00:00:00Z", "REJECTED"),
            (CLOSURE, "2021-08-02T16:59:59.999Z", "APPROVED"),
            (CLOSURE, "2021-08-02T17:00:00Z", "REJECTED"),
            (EXPIRED, None, "REJECTED"),
            (EXPIRED, "2023-01-01T00:00:00Z", "APPROVED"),
        ],
        ids=[
            "event-time-before-the-closure",
            "as-of-after-the-closure",
            "as-of-1ms-before-effective-from",
            "as-of-exactly-effective-from",
            "event-time-inside-the-window",
            "as-of-after-effective-until",
        ],
    )
    def test_windows_are_checked_against_as_of(
        self, rule: dict[str, Any], as_of: str | None, outcome: str
    ) -> None:
        """A listing created in 2020 is rejected when re-evaluated as of a time the rule is in force."""
        as_of_ms = None if as_of is None else epoch_ms(as_of)
        verdict = evaluate(CREATED_2020, compiled([rule]), as_of_ms)
        assert verdict.outcome == outcome

    def test_as_of_changes_only_the_window_check(self) -> None:
        """With every rule always in force, as-of changes nothing: conditions still read the listing."""
        policy = compiled([reject("fashion", cluster_in=["fashion"])])
        domestic = make_listing(category_path=("Electronics",), category_id="c-9")
        for listing in (CREATED_2020, domestic):
            assert evaluate(listing, policy, epoch_ms("2030-01-01T00:00:00Z")) == evaluate(
                listing, policy
            )

    def test_scan_key_holds_no_time(self) -> None:
        """Two listings of different ages evaluated as of one time have the same key."""
        policy = compiled([CLOSURE])
        newer = make_listing(event_time_ms=epoch_ms("2021-09-01T00:00:00Z"))
        as_of = epoch_ms("2021-10-01T00:00:00Z")
        assert scan(CREATED_2020, policy, as_of) == scan(newer, policy)

    def test_explain_says_as_of_and_uses_it(self) -> None:
        """The account names the as-of time and judges windows by it."""
        policy = compiled([CLOSURE])
        before = explain(CREATED_2020, policy).splitlines()
        assert any("closure" in line and "not in effect" in line for line in before)
        after = explain(CREATED_2020, policy, epoch_ms("2021-09-01T00:00:00Z")).splitlines()
        assert "rule windows checked as of 2021-09-01T07:00:00.000+07:00" in after
        assert "outcome: REJECTED" in after


class TestDecideBatchAsOf:
    def test_batch_as_of_rejects_an_old_listing_and_records_the_time(self) -> None:
        """decide_batch with as_of decides like evaluate(as_of); the provenance carries the time."""
        policy = compiled([CLOSURE])
        as_of = epoch_ms("2021-09-01T00:00:00Z")
        record = RawRecord("t", 0, 5, None, None, CODEC.encode_listing(CREATED_2020))
        (live,) = decide_batch([record], CODEC, policy, 0)
        decider = Decider(CODEC, policy, Provenance("REPLAY", "close", as_of))
        (replayed,) = decider.decide([record], 0)
        assert isinstance(live, Decided)
        assert isinstance(replayed, Decided)
        assert live.verdict.outcome == "APPROVED"
        assert replayed.verdict.outcome == "REJECTED"
        decision = CODEC.decode_decision(replayed.value)
        assert decision.provenance == Provenance("REPLAY", "close", as_of)
        assert decision.event_time_ms == CREATED_2020.event_time_ms


class TestParseAsOf:
    NOW = 1_700_000_000_000

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("now", NOW),
            ("NOW", NOW),
            ("2021-08-03", epoch_ms("2021-08-02T17:00:00Z")),
            ("2021-08-03T10:00:00Z", epoch_ms("2021-08-03T10:00:00Z")),
            ("2021-08-03T10:00:00+07:00", epoch_ms("2021-08-03T03:00:00Z")),
        ],
        ids=["now", "now-upper", "date-in-policy-zone", "utc", "offset"],
    )
    def test_accepted_forms(self, text: str, expected: int) -> None:
        """now, a date at 00:00 in the policy's timezone, or an RFC 3339 datetime with offset."""
        assert parse_as_of(text, JAKARTA, self.NOW) == expected

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("2021-08-03T10:00:00", "needs an offset"),
            ("yesterday", "is not now, a date"),
            ("2021-02-30", "is not now, a date"),
        ],
        ids=["no-offset", "word", "impossible-date"],
    )
    def test_refused_forms(self, text: str, message: str) -> None:
        """Anything else is one ValueError naming the value."""
        with pytest.raises(ValueError, match=message):
            parse_as_of(text, JAKARTA, self.NOW)

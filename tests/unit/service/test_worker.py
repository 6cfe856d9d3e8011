"""The loop against fakes of our own seams (Source, Delivery, Decider) and a controlled clock."""

from __future__ import annotations

import threading
from dataclasses import replace
from unittest.mock import create_autospec

import pytest
from prometheus_client import CollectorRegistry

from consumer import config
from consumer.core.pipeline import Decider, Tally
from consumer.core.records import PartitionKey, RawRecord
from consumer.delivery.at_least_once import AtLeastOnce
from consumer.errors import DeliveryError, KafkaClientError, SchemaSourceUnavailable
from consumer.kafka.faults import Faults
from consumer.kafka.source import JOIN_GRACE, Source
from consumer.policy import CompiledPolicy
from consumer.service.policy_watch import Policies
from consumer.service.worker import CONNECT_GRACE, REGISTRY_RETRY_DELAY, Telemetry, Worker
from consumer.telemetry.health import Health
from consumer.telemetry.metrics import Metrics
from consumer.telemetry.throttle import Warnings

SETTINGS = replace(config.load(env={}), max_in_flight=100, progress_interval=0)
TP0 = ("in", 0)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t


class Loop:
    """A Worker wired to autospec fakes; `turn()` runs one iteration of its loop."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.source = create_autospec(Source, instance=True, spec_set=True)
        self.source.poll.return_value = []
        self.source.done.return_value = False  # the group subscription: never done
        self.delivery = create_autospec(AtLeastOnce, instance=True, spec_set=True)
        self.delivery.in_flight.return_value = 0
        self.delivery.service.return_value = []
        self.delivery.shutdown.return_value = []
        self.delivery.revoke.return_value = []
        self.decider = create_autospec(Decider, instance=True, spec_set=True)
        self.decider.decide.return_value = []
        self.health = Health(stall_timeout=60, clock=self.clock.monotonic)
        self.metrics = Metrics(CollectorRegistry())
        self.faults = Faults()
        self.stop = threading.Event()
        self.worker = Worker(
            SETTINGS,
            self.source,
            self.delivery,
            self.decider,
            Telemetry(self.metrics, self.health, Warnings(self.clock.monotonic)),
            self.faults,
            self.stop,
            self.clock,
        )

    def turn(self) -> None:
        self.worker._turn()

    def assign(self, *keys: PartitionKey) -> None:
        """What the source does when the group assigns partitions: the loop's callback, with keys."""
        self.worker._on_assign(list(keys))


def records(*offsets: int, partition: int = 0) -> list[RawRecord]:
    return [RawRecord("in", partition, o, None, None, b"v") for o in offsets]


class TestBackpressure:
    def test_fetching_pauses_at_the_limit_and_resumes_below_half(self) -> None:
        """Too much unacknowledged output pauses every assigned partition until half is acked."""
        loop = Loop()
        loop.assign(TP0)
        loop.delivery.in_flight.return_value = 100
        loop.turn()
        loop.source.pause.assert_called_with({TP0})
        loop.delivery.in_flight.return_value = 60
        loop.turn()
        loop.source.resume.assert_not_called()
        loop.delivery.in_flight.return_value = 49
        loop.turn()
        loop.source.resume.assert_called_once_with({TP0})

    def test_while_paused_the_loop_keeps_serving_deliveries(self) -> None:
        """Paused is not stalled: acknowledgements keep being served and the heartbeat beats."""
        loop = Loop()
        loop.assign(TP0)
        loop.delivery.in_flight.return_value = 100
        loop.turn()
        loop.clock.t += 5
        loop.turn()
        assert loop.delivery.service.call_count >= 4
        assert loop.health.last_turn == loop.clock.t


class TestRegistryOutage:
    def test_the_batch_is_held_and_rewound_not_retried_in_place(self) -> None:
        """Registry away: pause and seek back the batch's partitions; the loop keeps turning."""
        loop = Loop()
        loop.assign(TP0, ("in", 1))
        loop.source.poll.return_value = records(5, 6) + records(9, partition=1)
        loop.decider.decide.side_effect = SchemaSourceUnavailable("registry down")
        loop.turn()
        loop.source.pause.assert_called_with({TP0: 5, ("in", 1): 9})
        loop.source.seek.assert_called_with({TP0: 5, ("in", 1): 9})
        loop.delivery.submit.assert_not_called()
        assert not loop.worker._idle_for(0)  # held work is not idle

        loop.source.poll.return_value = []
        loop.turn()
        loop.source.resume.assert_not_called()  # not before the retry delay
        loop.clock.t += REGISTRY_RETRY_DELAY
        loop.turn()
        loop.source.resume.assert_called_once_with({TP0, ("in", 1)})


class TestRebalance:
    def test_revoke_hands_in_flight_work_to_the_delivery_first(self) -> None:
        """The delivery makes the revoked partitions' work durable before they are given up."""
        loop = Loop()
        loop.assign(TP0, ("in", 1))
        loop.delivery.revoke.return_value = [Tally()]
        loop.worker._on_revoke([TP0])
        loop.delivery.revoke.assert_called_once_with(
            {TP0}, {TP0, ("in", 1)}, SETTINGS.shutdown_timeout
        )
        assert loop.worker._assigned == {("in", 1)}

    @pytest.mark.parametrize("release", ["_on_revoke", "_on_lost"])
    def test_records_fetched_before_a_revocation_in_the_same_poll_are_not_decided(
        self, release: str
    ) -> None:
        """A poll fetches in chunks and the rebalance callback may run between two: what the
        first chunk held of a revoked partition is its next owner's, from the committed offset.
        Deciding it here would commit outputs without their offsets (duplicates)."""
        loop = Loop()
        loop.assign(TP0, ("in", 1))
        fetched = records(7, 8) + records(3, partition=1)

        def poll(_size: int, _timeout: float) -> list[RawRecord]:
            getattr(loop.worker, release)([TP0])  # the callback runs inside the poll
            return fetched

        loop.source.poll.side_effect = poll
        loop.turn()
        loop.decider.decide.assert_called_once()
        assert loop.decider.decide.call_args.args[0] == records(3, partition=1)

    def test_a_partition_revoked_and_assigned_back_in_one_poll_is_fetched_again(self) -> None:
        """Back from the committed offset: the records fetched before the revocation would be
        decided twice (now and when fetched again), so they are dropped too."""
        loop = Loop()
        loop.assign(TP0)

        def poll(_size: int, _timeout: float) -> list[RawRecord]:
            loop.worker._on_revoke([TP0])
            loop.assign(TP0)
            return records(7, 8)

        loop.source.poll.side_effect = poll
        loop.turn()
        loop.decider.decide.assert_not_called()
        assert loop.worker._assigned == {TP0}

    def test_a_poll_without_a_rebalance_decides_everything(self) -> None:
        loop = Loop()
        loop.assign(TP0)
        loop.worker._on_revoke([("in", 1)])  # a revocation between polls changes nothing
        loop.source.poll.return_value = records(7, 8)
        loop.turn()
        assert loop.decider.decide.call_args.args[0] == records(7, 8)

    def test_partitions_assigned_while_paused_are_paused_through_the_source(self) -> None:
        """Backpressure holds for new partitions too: they are paused as they arrive."""
        loop = Loop()
        loop.assign(TP0)
        loop.delivery.in_flight.return_value = 100
        loop.turn()
        loop.source.pause.reset_mock()
        loop.assign(("in", 1))
        loop.source.pause.assert_called_once_with([("in", 1)])
        assert loop.worker._assigned == {TP0, ("in", 1)}

    def test_partitions_assigned_while_fetching_are_not_paused(self) -> None:
        """Without backpressure a new partition is fetched from at once."""
        loop = Loop()
        loop.assign(TP0)
        loop.source.pause.assert_not_called()

    def test_lost_partitions_are_not_committed_and_readiness_drops(self) -> None:
        """A lost partition belongs to someone else already: the delivery forgets it."""
        loop = Loop()
        loop.assign(TP0)
        loop.worker._on_lost([TP0])
        loop.delivery.lose.assert_called_once_with({TP0}, {TP0})
        assert loop.worker._assigned == set()
        assert loop.health.joined is False


class TestShutdown:
    def test_shutdown_gives_the_delivery_most_of_the_timeout_and_closes(self) -> None:
        """Stop: pause, let the delivery finish within 80% of shutdown_timeout, close both clients."""
        loop = Loop()
        loop.stop.set()
        loop.worker.run()
        loop.delivery.shutdown.assert_called_once_with(set(), SETTINGS.shutdown_timeout * 0.8)
        loop.source.close.assert_called_once_with()
        loop.delivery.close.assert_called_once_with()
        assert loop.health.stopping

    @pytest.mark.parametrize(
        "fault",
        [
            DeliveryError("out: broker refused output"),
            KafkaClientError("fatal Kafka client error: TOPIC_AUTHORIZATION_FAILED"),
        ],
        ids=["refused-output", "fatal-client-error"],
    )
    def test_a_fault_recorded_by_a_callback_stops_the_loop(
        self, fault: DeliveryError | KafkaClientError
    ) -> None:
        """Callbacks never raise: what they record in Faults is raised by the loop at its next turn."""
        loop = Loop()
        loop.faults.record(fault)
        with pytest.raises(type(fault)) as raised:
            loop.turn()
        assert raised.value is fault


class TestIdle:
    def test_until_idle_waits_for_durable_work(self) -> None:
        """Quiet input is not enough: the delivery must have nothing pending."""
        loop = Loop()
        loop.assign(TP0)
        loop.clock.t += 10
        loop.delivery.idle.return_value = False
        assert not loop.worker._idle_for(3)
        loop.delivery.idle.return_value = True
        assert loop.worker._idle_for(3)

    def test_a_run_that_never_joined_fails_naming_the_cause_instead_of_idling_out(self) -> None:
        """`run --until-idle` against a wrong password used to end "input idle", exit 0, having
        decided nothing: a job runner read that as success."""
        loop = Loop()
        loop.delivery.idle.return_value = True
        loop.health.client_problem = "authentication failed: _AUTHENTICATION: SASL error"
        loop.clock.t += CONNECT_GRACE - 1
        assert not loop.worker._idle_for(3)  # credentials get a moment (users still loading)
        loop.clock.t += 1
        assert loop.worker._idle_for(3)
        with pytest.raises(KafkaClientError) as failed:
            loop.worker._ensure_joined()
        assert str(failed.value) == (
            f"stopped without ever joining group {SETTINGS.group_id} at "
            f"{SETTINGS.kafka['bootstrap.servers']}: "
            "authentication failed: _AUTHENTICATION: SASL error"
        )

    def test_no_broker_at_all_fails_after_the_join_grace(self) -> None:
        loop = Loop()
        loop.delivery.idle.return_value = True
        loop.health.broker_up = False
        loop.clock.t += JOIN_GRACE - 1
        assert not loop.worker._idle_for(3)
        loop.clock.t += 1
        assert loop.worker._idle_for(3)
        with pytest.raises(KafkaClientError, match=r": no broker answered$"):
            loop.worker._ensure_joined()

    def test_a_member_that_joined_without_partitions_ends_normally(self) -> None:
        """More replicas than partitions: joined, nothing assigned, nothing to do: exit 0."""
        loop = Loop()
        loop.delivery.idle.return_value = True
        loop.health.joined = True
        loop.clock.t += JOIN_GRACE
        assert loop.worker._idle_for(3)
        loop.worker._ensure_joined()  # no error

    def test_a_bounded_source_stops_the_loop_once_done_and_delivered(self) -> None:
        """A replay's source read to its end ends the run, but only when all work is durable."""
        loop = Loop()
        loop.assign(TP0)
        loop.source.done.side_effect = [True, True]
        loop.delivery.idle.side_effect = [False, True]
        loop.worker.run()
        assert loop.source.poll.call_count == 2  # one more turn while output was in flight
        loop.delivery.shutdown.assert_called_once()

    def test_the_delivery_is_told_every_consumed_offset(self) -> None:
        """A decider that drops records (replay) still gets their offsets committed: the loop
        hands the delivery each partition's span of the batch beside the results."""
        loop = Loop()
        loop.assign(TP0, ("in", 1))
        batch = records(5, 6, 7) + records(2, 3, partition=1)
        loop.source.poll.return_value = batch
        loop.decider.decide.return_value = []  # every record dropped
        loop.turn()
        loop.delivery.submit.assert_called_once_with([], {TP0: (5, 7), ("in", 1): (2, 3)})

    def test_durable_work_is_counted_when_the_delivery_reports_it(self) -> None:
        """Metrics count what the delivery says became durable, not what was produced."""
        loop = Loop()
        loop.assign(TP0)
        tally = Tally()
        tally.dead_letters["corrupt"] = 2
        loop.delivery.service.return_value = [tally]
        loop.turn()
        assert loop.worker.summary.dead_letters["corrupt"] == 2
        assert loop.worker.summary.events == 2


class TestPolicySwap:
    def test_a_pending_policy_change_is_applied_between_two_batches(self) -> None:
        """Batch 1 is decided by the old decider, batch 2 and later by the one built for the change."""
        loop = Loop()
        new_live = create_autospec(CompiledPolicy, instance=True)
        updates = [None, Policies(new_live), None]
        taken: list[Policies | None] = []

        class Updates:
            def take(self) -> Policies | None:
                taken.append(updates.pop(0))
                return taken[-1]

        loop.worker._policies = Updates()
        swapped = create_autospec(Decider, instance=True, spec_set=True)
        swapped.decide.return_value = []
        loop.decider.replaced.return_value = swapped
        loop.assign(TP0)
        loop.source.poll.return_value = records(0, 1)
        loop.turn()
        loop.source.poll.return_value = records(2, 3)
        loop.turn()
        loop.source.poll.return_value = records(4)
        loop.turn()
        assert [c.args[0] for c in loop.decider.decide.call_args_list] == [records(0, 1)]
        loop.decider.replaced.assert_called_once_with(new_live, None)
        assert [c.args[0] for c in swapped.decide.call_args_list] == [records(2, 3), records(4)]

    def test_no_change_costs_no_new_decider(self) -> None:
        loop = Loop()

        class Quiet:
            def take(self) -> Policies | None:
                return None

        loop.worker._policies = Quiet()
        loop.assign(TP0)
        loop.source.poll.return_value = records(0)
        loop.turn()
        loop.decider.replaced.assert_not_called()
        assert loop.decider.decide.call_count == 1

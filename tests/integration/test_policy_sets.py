"""A policy set on a real broker: enforced, hot-reloaded on a layer edit, kept in force when a
layer breaks, and run as a shadow policy."""

from __future__ import annotations

from pathlib import Path

from consumer.codec import AvroCodec
from consumer.kafka.sample_producer import produce_samples
from tests.integration import scrape
from tests.integration.conftest import Topics, start_worker
from tests.integration.test_policy_reload import (
    decisions,
    logged,
    policy_versions,
    reloads,
    replace_file,
    stop,
)
from tests.unit.policy.test_sets import PERMENDAG, write_indonesia_set
from tests.waiting import wait_until

CODEC = AvroCodec()


class TestPolicySetOnABroker:
    def test_a_layer_edit_is_applied_and_a_broken_layer_keeps_the_set(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        """Decisions name the set; editing the Permendag layer reloads the set with a new
        version (the log line names the layer); deleting it keeps the set in force and ready."""
        s = topics.settings
        folder = tmp_path / "policies"
        folder.mkdir()
        set_path = write_indonesia_set(folder)
        worker = start_worker(
            topics,
            tmp_path,
            IMPORT_CLOSURE_POLICY=str(set_path),
            IMPORT_CLOSURE_POLICY_RELOAD_INTERVAL="0.2",
        )
        wait_until(lambda: policy_versions(worker), 30, "the worker to serve metrics")
        [first] = policy_versions(worker)
        produce_samples(s, s.input_topic, count=200, seed=31)
        wait_until(lambda: scrape.events_done(worker.base_url) >= 200, 60, "decisions")

        layer = folder / PERMENDAG
        replace_file(layer, layer.read_text().replace("amount: 100,", "amount: 150,"))
        wait_until(lambda: reloads(worker, "applied") == 1, 30, "the reload of the layer")
        [reloaded] = logged(worker, "policy reloaded")
        assert reloaded["changes"] == (
            "layers[1] (permendag-31-2023.yaml): rules changed permendag-min-price"
        )
        [second] = policy_versions(worker)
        assert first.startswith("2023.09+")
        assert second.startswith("2023.09+")
        assert first != second

        layer.unlink()
        wait_until(lambda: reloads(worker, "rejected") == 1, 30, "the missing layer")
        [line] = logged(worker, "policy change rejected, keeping the policy in force")
        problems = line["problems"]
        assert isinstance(problems, list)
        assert any("layers[1] (permendag-31-2023.yaml): no such file" in str(p) for p in problems)
        assert scrape.status(f"{worker.base_url}/readyz") == 200
        produce_samples(s, s.input_topic, count=200, seed=32)
        wait_until(lambda: scrape.events_done(worker.base_url) >= 400, 60, "more decisions")
        assert policy_versions(worker) == {second}
        stop(worker)
        found = decisions(topics)
        assert {d.policy for d in found} == {"indonesia-cross-border"}
        assert {d.policy_version for d in found} <= {first, second}

    def test_a_set_runs_as_the_shadow_policy(self, topics: Topics, tmp_path: Path) -> None:
        """The bundled policy stays live; the set's verdicts are counted beside it."""
        s = topics.settings
        folder = tmp_path / "policies"
        folder.mkdir()
        worker = start_worker(
            topics,
            tmp_path,
            IMPORT_CLOSURE_SHADOW_POLICY=str(write_indonesia_set(folder)),
        )
        wait_until(lambda: policy_versions(worker, "shadow"), 30, "the worker to serve metrics")
        [shadow] = policy_versions(worker, "shadow")
        assert shadow.startswith("2023.09+")
        produce_samples(s, s.input_topic, count=200, seed=33)
        wait_until(lambda: scrape.events_done(worker.base_url) >= 200, 60, "decisions")
        found = scrape.samples(worker.base_url)
        shadowed = sum(
            v for (name, _), v in found.items() if name == "import_closure_shadow_decisions_total"
        )
        assert shadowed >= 200
        stop(worker)
        assert {d.policy for d in decisions(topics)} == {"id-akar-import-closure"}

"""deploy/k8s: kustomize renders base and overlay; every object validates offline; the manifests
agree with the worker's contract (probes, port, env names, metrics job) and with each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from confluent_kafka import Consumer, KafkaException

from consumer import config
from consumer.errors import ConfigError
from consumer.kafka import client_conf
from consumer.policy import bundled_policy_text
from tests.deploy import contract, crd_schemas
from tests.deploy.conftest import KUSTOMIZATIONS
from tests.deploy.k8s import container_env, named, one, resolve_port, worker_container
from tests.deploy.tools import ROOT, require, run

#: The oldest Kubernetes minor we support, and the newest kubernetes-validate knows.
K8S_VERSIONS = ("1.29", kubernetes_validate.latest_version())
NAMES = tuple(KUSTOMIZATIONS)
CRD_GROUPS = ("monitoring.coreos.com/", "keda.sh/")


def _label(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


class TestRender:
    def test_base_renders_the_workers_objects(
        self, rendered: dict[str, list[dict[str, Any]]]
    ) -> None:
        """The base holds the Deployment and everything that serves or watches it."""
        kinds = sorted(o["kind"] for o in rendered["base"])
        assert kinds == [
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "PodMonitor",
            "PrometheusRule",
            "ServiceAccount",
        ]

    def test_example_overlay_adds_keda_and_a_namespace(
        self, rendered: dict[str, list[dict[str, Any]]]
    ) -> None:
        """The overlay puts everything in one namespace and adds lag-based autoscaling."""
        objects = rendered["example"]
        assert {o["metadata"].get("namespace") for o in objects} == {"listings"}
        kinds = {o["kind"] for o in objects}
        assert {"ScaledObject", "TriggerAuthentication"} <= kinds
        image = worker_container(objects)["image"]
        assert image == "registry.example.com/marketplace/import-closure:0.1.0"

    @pytest.mark.parametrize("name", NAMES)
    def test_no_secret_is_shipped(
        self, rendered: dict[str, list[dict[str, Any]]], name: str
    ) -> None:
        """SASL credentials are referenced, never committed."""
        assert [o for o in rendered[name] if o["kind"] == "Secret"] == []


class TestSchemas:
    @pytest.mark.parametrize("version", K8S_VERSIONS)
    @pytest.mark.parametrize("name", NAMES)
    def test_builtin_objects_validate_against_the_kubernetes_schema(
        self, rendered: dict[str, list[dict[str, Any]]], name: str, version: str
    ) -> None:
        """Strict schemas: unknown fields fail too. Custom resources are checked below."""
        builtin = [o for o in rendered[name] if not o["apiVersion"].startswith(CRD_GROUPS)]
        assert builtin
        errors = []
        for obj in builtin:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{_label(obj)}: {exc.message} at {list(exc.path)}")
        assert errors == []

    @pytest.mark.parametrize("name", NAMES)
    def test_custom_resources_match_their_crd_structure(
        self, rendered: dict[str, list[dict[str, Any]]], name: str
    ) -> None:
        """kubernetes-validate has no CRD schemas; crd_schemas.py holds checked subsets of them."""
        custom = [o for o in rendered[name] if o["apiVersion"].startswith(CRD_GROUPS)]
        assert custom
        for obj in custom:
            schema = crd_schemas.BY_KIND.get((obj["apiVersion"], obj["kind"]))
            assert schema is not None, f"{_label(obj)}: no schema for {obj['apiVersion']}"
            jsonschema.validate(obj, schema)


class TestPrometheusRule:
    def test_groups_equal_deploy_prometheus_rules(
        self, rendered: dict[str, list[dict[str, Any]]], rule_groups: list[dict[str, Any]]
    ) -> None:
        """One set of rules: the PrometheusRule carries exactly what promtool tested."""
        rule = one(rendered["base"], "PrometheusRule")
        assert rule["spec"]["groups"] == rule_groups

    def test_generated_file_is_up_to_date(self) -> None:
        """deploy/tools/sync-prometheusrule --check: regenerate after editing rules.yaml."""
        run([str(ROOT / "deploy" / "tools" / "sync-prometheusrule"), "--check"])

    def test_rules_pass_promtool_as_the_operator_loads_them(
        self, rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
    ) -> None:
        """The groups as rendered (after kustomize) are a valid Prometheus rule file."""
        rule = one(rendered["example"], "PrometheusRule")
        path = tmp_path / "rendered-rules.yaml"
        path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        run([require("promtool"), "check", "rules", str(path)])


class TestWorkerPod:
    @pytest.mark.parametrize("name", NAMES)
    def test_probes_use_the_health_endpoints_on_the_metrics_port(
        self, rendered: dict[str, list[dict[str, Any]]], name: str
    ) -> None:
        """Liveness on /healthz, readiness on /readyz, both on port 9400."""
        container = worker_container(rendered[name])
        live = container["livenessProbe"]["httpGet"]
        ready = container["readinessProbe"]["httpGet"]
        assert live["path"] == contract.LIVENESS_PATH
        assert ready["path"] == contract.READINESS_PATH
        assert resolve_port(container, live["port"]) == contract.HTTP_PORT
        assert resolve_port(container, ready["port"]) == contract.HTTP_PORT
        assert container_env(rendered[name])["IMPORT_CLOSURE_HTTP_PORT"] == str(contract.HTTP_PORT)

    @pytest.mark.parametrize("name", NAMES)
    def test_env_names_are_settings_of_the_contract(
        self, rendered: dict[str, list[dict[str, Any]]], name: str
    ) -> None:
        """Every IMPORT_CLOSURE_* variable the pod gets is a documented setting."""
        unknown = [k for k in container_env(rendered[name]) if not contract.is_known_env(k)]
        assert unknown == []

    @pytest.mark.parametrize("name", NAMES)
    def test_worker_config_accepts_the_pod_environment(
        self, rendered: dict[str, list[dict[str, Any]]], name: str
    ) -> None:
        """consumer.config loads the environment, and librdkafka accepts every property in it.

        The worker refuses to start on an unknown setting; a Consumer built from the result proves
        the IMPORT_CLOSURE_KAFKA_* names are real librdkafka properties (it does not connect).
        """
        env = container_env(rendered[name])
        try:
            settings = config.load(env=env)
        except ConfigError as exc:
            pytest.fail(f"the worker would refuse this environment: {exc}")
        assert str(settings.policy) == env["IMPORT_CLOSURE_POLICY"]
        assert settings.shutdown_timeout == float(env["IMPORT_CLOSURE_SHUTDOWN_TIMEOUT"])
        try:
            consumer = Consumer(client_conf.consumer_conf(settings))
        except KafkaException as exc:
            pytest.fail(f"librdkafka rejects the configuration: {exc}")
        consumer.close()

    def test_commented_shadow_example_is_an_environment_the_worker_accepts(
        self, rendered: dict[str, list[dict[str, Any]]]
    ) -> None:
        """config.env's optional `#IMPORT_CLOSURE_*=` lines, uncommented, still load, and the
        shadow policy they name sits in the policy mount beside the live one."""
        lines = (KUSTOMIZATIONS["base"] / "config.env").read_text().splitlines()
        examples = dict(
            line[1:].split("=", 1) for line in lines if line.startswith("#IMPORT_CLOSURE_")
        )
        assert [k for k in examples if not contract.is_known_env(k)] == []
        env = container_env(rendered["base"]) | examples
        try:
            settings = config.load(env=env)
        except ConfigError as exc:
            pytest.fail(f"the worker would refuse the example: {exc}")
        assert settings.shadow_policy is not None
        assert settings.policy is not None
        assert settings.shadow_policy.parent == settings.policy.parent
        assert settings.shadow_topic == examples["IMPORT_CLOSURE_SHADOW_TOPIC"]

    @pytest.mark.parametrize("name", NAMES)
    def test_topics_and_group_are_the_contract_defaults(
        self, rendered: dict[str, list[dict[str, Any]]], name: str
    ) -> None:
        env = container_env(rendered[name])
        assert env["IMPORT_CLOSURE_INPUT_TOPIC"] == contract.INPUT_TOPIC
        assert env["IMPORT_CLOSURE_APPROVED_TOPIC"] == contract.DECISIONS_TOPIC
        assert env["IMPORT_CLOSURE_REJECTED_TOPIC"] == contract.DECISIONS_TOPIC
        assert env["IMPORT_CLOSURE_DLQ_TOPIC"] == contract.DLQ_TOPIC

    @pytest.mark.parametrize("name", NAMES)
    def test_grace_period_exceeds_the_shutdown_timeout(
        self, rendered: dict[str, list[dict[str, Any]]], name: str
    ) -> None:
        """SIGKILL must not arrive while the worker still delivers and commits."""
        pod = one(rendered[name], "Deployment")["spec"]["template"]["spec"]
        timeout = float(container_env(rendered[name])["IMPORT_CLOSURE_SHUTDOWN_TIMEOUT"])
        assert timeout <= contract.DEFAULT_SHUTDOWN_TIMEOUT
        assert pod["terminationGracePeriodSeconds"] >= timeout + 10

    @pytest.mark.parametrize("name", NAMES)
    def test_runs_as_non_root_on_a_read_only_root_without_capabilities(
        self, rendered: dict[str, list[dict[str, Any]]], name: str
    ) -> None:
        pod = one(rendered[name], "Deployment")["spec"]["template"]["spec"]
        container = worker_container(rendered[name])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["automountServiceAccountToken"] is False
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]) == {"requests", "limits"}

    @pytest.mark.parametrize("name", NAMES)
    def test_policy_is_mounted_where_the_env_points(
        self, rendered: dict[str, list[dict[str, Any]]], name: str
    ) -> None:
        """IMPORT_CLOSURE_POLICY names a key of the (hash-named) policy ConfigMap's mount, a
        directory mount: a subPath mount never receives ConfigMap updates, so no hot reload."""
        objects = rendered[name]
        policy_path = container_env(objects)["IMPORT_CLOSURE_POLICY"]
        container = worker_container(objects)
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        mount = next(
            m for m in container["volumeMounts"] if policy_path.startswith(m["mountPath"] + "/")
        )
        assert mount["readOnly"] is True
        assert "subPath" not in mount
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        config_map = named(objects, "ConfigMap", volume["configMap"]["name"])
        assert policy_path[len(mount["mountPath"]) + 1 :] in config_map["data"]

    def test_base_policy_passes_validate_policy(self) -> None:
        """The policy the base deploys is one the worker accepts (`import-closure validate-policy`)."""
        policy = KUSTOMIZATIONS["base"] / "policy.yaml"
        result = subprocess.run(
            [sys.executable, "-m", "consumer", "validate-policy", str(policy)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_base_policy_is_the_bundled_default(self) -> None:
        """The base deploys the package's default policy; overlays replace it with theirs.

        Refresh with: cp consumer/data/policies/id-akar-import-closure.yaml deploy/k8s/base/policy.yaml
        """
        deployed = (KUSTOMIZATIONS["base"] / "policy.yaml").read_text(encoding="utf-8")
        assert deployed == bundled_policy_text("id-akar-import-closure")

    def test_base_runs_three_replicas_within_the_partition_count(
        self, rendered: dict[str, list[dict[str, Any]]]
    ) -> None:
        replicas = one(rendered["base"], "Deployment")["spec"]["replicas"]
        assert replicas == 3
        assert replicas <= contract.INPUT_PARTITIONS


class TestSelectors:
    @pytest.mark.parametrize("kind", ["PodDisruptionBudget", "PodMonitor"])
    @pytest.mark.parametrize("name", NAMES)
    def test_selects_the_worker_pods(
        self, rendered: dict[str, list[dict[str, Any]]], name: str, kind: str
    ) -> None:
        objects = rendered[name]
        pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
        selector = one(objects, kind)["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()

    @pytest.mark.parametrize("name", NAMES)
    def test_podmonitor_scrapes_metrics_port_as_the_contract_job(
        self, rendered: dict[str, list[dict[str, Any]]], name: str
    ) -> None:
        """The job label comes from a pod label whose value is the contract's job name."""
        objects = rendered[name]
        monitor = one(objects, "PodMonitor")["spec"]
        pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
        assert pod_labels[monitor["jobLabel"]] == contract.JOB
        (endpoint,) = monitor["podMetricsEndpoints"]
        assert endpoint["path"] == contract.METRICS_PATH
        assert resolve_port(worker_container(objects), endpoint["port"]) == contract.HTTP_PORT


class TestNetworkPolicy:
    @pytest.mark.parametrize("name", NAMES)
    def test_selects_the_worker_pods_and_restricts_ingress(
        self, rendered: dict[str, list[dict[str, Any]]], name: str
    ) -> None:
        objects = rendered[name]
        pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
        spec = one(objects, "NetworkPolicy")["spec"]
        assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
        # Ingress only: egress to the brokers stays open (their addresses differ per cluster).
        assert spec["policyTypes"] == ["Ingress"]

    @pytest.mark.parametrize("name", NAMES)
    def test_admits_only_prometheus_pods_of_the_monitoring_namespace_to_the_http_port(
        self, rendered: dict[str, list[dict[str, Any]]], name: str
    ) -> None:
        """One rule: the contract's HTTP port, from pods that match both a namespace and a pod
        selector (no ipBlock, no empty `from` that would admit every source)."""
        objects = rendered[name]
        (rule,) = one(objects, "NetworkPolicy")["spec"]["ingress"]
        (port,) = rule["ports"]
        assert port["protocol"] == "TCP"
        assert resolve_port(worker_container(objects), port["port"]) == contract.HTTP_PORT
        (peer,) = rule["from"]
        assert set(peer) == {"namespaceSelector", "podSelector"}
        assert peer["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "monitoring"
        }
        assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}


class TestKeda:
    def test_scales_the_deployment_up_to_the_partition_count(
        self, rendered: dict[str, list[dict[str, Any]]]
    ) -> None:
        """More workers than partitions would idle; KEDA owns the replica count."""
        objects = rendered["example"]
        scaled = one(objects, "ScaledObject")["spec"]
        deployment = one(objects, "Deployment")
        assert scaled["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert scaled["maxReplicaCount"] == contract.INPUT_PARTITIONS
        assert 1 <= scaled["minReplicaCount"] < scaled["maxReplicaCount"]
        assert "replicas" not in deployment["spec"]

    def test_trigger_reads_group_topic_and_brokers_from_the_worker_env(
        self, rendered: dict[str, list[dict[str, Any]]]
    ) -> None:
        objects = rendered["example"]
        (trigger,) = one(objects, "ScaledObject")["spec"]["triggers"]
        env = container_env(objects)
        from_env = {k: v for k, v in trigger["metadata"].items() if k.endswith("FromEnv")}
        assert set(from_env) == {"bootstrapServersFromEnv", "consumerGroupFromEnv", "topicFromEnv"}
        for variable in from_env.values():
            assert variable in env, f"{variable} is not in the worker container's environment"
        assert trigger["metadata"]["allowIdleConsumers"] == "false"

    def test_trigger_authenticates_with_the_workers_secret(
        self, rendered: dict[str, list[dict[str, Any]]]
    ) -> None:
        objects = rendered["example"]
        (trigger,) = one(objects, "ScaledObject")["spec"]["triggers"]
        auth = named(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        secrets = {
            item["valueFrom"]["secretKeyRef"]["name"]
            for item in worker_container(objects)["env"]
            if "secretKeyRef" in item.get("valueFrom", {})
        }
        refs = auth["spec"]["secretTargetRef"]
        assert {ref["name"] for ref in refs} == secrets
        assert {ref["parameter"] for ref in refs} == {"username", "password"}

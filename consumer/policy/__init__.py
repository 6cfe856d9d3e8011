"""The policy engine: load and validate YAML, compile once, evaluate listings, explain decisions."""

from consumer.policy.bundled import BUNDLED_POLICIES, bundled_policy_text
from consumer.policy.compile import CompiledPolicy, compile_policy
from consumer.policy.enforced import Enforced
from consumer.policy.evaluate import evaluate
from consumer.policy.explain import explain, summarize
from consumer.policy.load import load_policy
from consumer.policy.model import PolicyModel
from consumer.policy.sets import CompiledSet

__all__ = [
    "BUNDLED_POLICIES",
    "CompiledPolicy",
    "CompiledSet",
    "Enforced",
    "PolicyModel",
    "bundled_policy_text",
    "compile_policy",
    "evaluate",
    "explain",
    "load_policy",
    "summarize",
]

"""The `condition: NAME` references of one policy file, checked once every block is read.

Unknown names, cycles, nesting through names and how far names expand are each reported once, at
the reference that causes it. Iterative throughout: a chain of 10,000 names costs no recursion.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from consumer.policy.model import MAX_BLOCK_DEPTH
from consumer.policy.problems import HINT_MAX_LEN, Problems

#: Condition blocks the rules may expand to through named conditions: each is a call per
#: listing, and a few names that each use the others many times multiply (a 5 MB file of plain
#: rules stays far below this).
MAX_EXPANDED_BLOCKS: Final = 1_000_000


class Ref(NamedTuple):
    """A `condition: NAME` key: where it is, and how deep its block is (`when` is level 1)."""

    name: str
    path: str
    level: int


class ConditionReferences:
    """The named blocks' references, checked once every block is read: unknown names, cycles
    and nesting through references, each reported once at the `condition:` key that causes it.

    Iterative throughout: a chain of 10,000 names costs no recursion.
    """

    def __init__(self) -> None:
        #: name -> (path, its references, its deepest own level, its own blocks)
        self.named: dict[str, tuple[str, list[Ref], int, int]] = {}
        #: the references made by rules, and the blocks the rules write themselves
        self.uses: list[Ref] = []
        self.rule_nodes = 0

    def check(self, problems: Problems) -> None:
        hints = [name for name in self.named if len(name) <= HINT_MAX_LEN]
        for refs in [*(named[1] for named in self.named.values()), self.uses]:
            for ref in refs:
                if ref.name not in self.named:
                    msg = f"unknown condition {ref.name!r}" + problems.hint(ref.name, hints)
                    problems.fail(ref.path, msg)
        cyclic = self._cycles(problems)
        height, size = self._heights(cyclic)
        expanded = self.rule_nodes + sum(size.get(ref.name, 0) for ref in self.uses)
        if expanded > MAX_EXPANDED_BLOCKS:
            msg = (
                f"the rules' condition blocks expand to more than {MAX_EXPANDED_BLOCKS:,} blocks "
                "(each use of a named condition counts its blocks again); evaluating them "
                "would be slow for every listing"
            )
            problems.fail("rules", msg)
        for refs in [*(named[1] for named in self.named.values()), self.uses]:
            for ref in refs:
                below = height.get(ref.name)
                # only where the limit is first passed: a too-deep name is reported at its own ref
                if below is not None and below <= MAX_BLOCK_DEPTH < ref.level + below:
                    msg = (
                        f"condition blocks nest deeper than {MAX_BLOCK_DEPTH} levels "
                        f"through condition {ref.name!r} ({ref.level + below} levels)"
                    )
                    problems.fail(ref.path, msg)

    def _edges(self, name: str) -> list[Ref]:
        return [ref for ref in self.named[name][1] if ref.name in self.named]

    def _cycles(self, problems: Problems) -> set[str]:
        """Names on a cycle; each cycle reported once, at the reference that closes it."""
        state: dict[str, int] = {}  # 1 on the current path, 2 done
        cyclic: set[str] = set()
        for root in self.named:
            if root in state:
                continue
            path = [root]
            stack = [iter(self._edges(root))]
            state[root] = 1
            while stack:
                ref = next(stack[-1], None)
                if ref is None:
                    state[path.pop()] = 2
                    stack.pop()
                elif state.get(ref.name) == 1:
                    loop = path[path.index(ref.name) :]
                    cyclic.update(loop)
                    shown = " -> ".join([*loop, ref.name])
                    problems.fail(ref.path, f"conditions refer to each other in a cycle: {shown}")
                elif ref.name not in state:
                    state[ref.name] = 1
                    path.append(ref.name)
                    stack.append(iter(self._edges(ref.name)))
        return cyclic

    def _heights(self, cyclic: set[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Levels each named block spans once its references are expanded (its body is 1), and
        the blocks it expands to (capped just past MAX_EXPANDED_BLOCKS: sharing can make that
        number exponential in the names)."""
        height: dict[str, int] = {}
        size: dict[str, int] = {}
        for root in self.named:
            if root in height or root in cyclic:
                continue
            todo = [root]
            while todo:
                name = todo[-1]
                if name in height:  # pushed by two parents before it was computed
                    todo.pop()
                    continue
                refs = [ref for ref in self._edges(name) if ref.name not in cyclic]
                missing = [ref.name for ref in refs if ref.name not in height]
                if missing:
                    todo.extend(missing)
                    continue
                todo.pop()
                spans = [ref.level + height[ref.name] for ref in refs]
                height[name] = max([self.named[name][2], *spans])
                own = self.named[name][3] + sum(size[ref.name] for ref in refs)
                size[name] = min(own, MAX_EXPANDED_BLOCKS + 1)
        return height, size

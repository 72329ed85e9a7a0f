"""Which crashes the infrastructure caused: one table of rules over a crashed run's texts.

A run is CRASHED (the state *type*: users and Prefect may name the state anything) when it ended
outside its own code. Some of those crashes say nothing about the code and would pass if the run
started again on a healthy node: the pod was evicted or preempted, its node was lost or shut down,
the pod never started, the runtime stopped the process with SIGTERM. Others would happen again:
a process killed for using too much memory. `retry install --crashed` retries the first kind;
``--oom`` adds the second, because a SIGKILL (exit code -9 or 137) is all a process worker sees of
the kernel's out-of-memory killer, and is indistinguishable from one.

`match_crash` reads the crash's state message and the run's log evidence (where Prefect's runner,
its workers and prefect-kubernetes's observer write what happened), and returns the first rule of
`CRASH_RULES` that matches: the order is the precedence, the most specific cause first (an evicted
pod's process also gets a SIGTERM; an OOM-killed container's exit code is a SIGKILL's). Each
pattern comes from the source that writes the message; the tests quote them (tests/evidence/
test_crashes.py). A run that logs these words itself can have itself retried: at most
``max_retries`` times, like any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

#: ``infra``: retried with ``--crashed``; ``oom``: only with ``--crashed --oom``; ``never``: not retried.
CrashKind = Literal["infra", "oom", "never"]


@dataclass(frozen=True)
class CrashRule:
    """One cause of a crash: its id (named in every decision), what it means, and its pattern."""

    id: str
    what: str
    kind: CrashKind
    pattern: re.Pattern[str]


def _rule(rule_id: str, what: str, kind: CrashKind, pattern: str) -> CrashRule:
    return CrashRule(rule_id, what, kind, re.compile(pattern, re.M))


#: The rules, in precedence order (the first that matches decides).
CRASH_RULES: tuple[CrashRule, ...] = (
    # A cancelled run whose Cancelled state could not be stored: the user stopped it.
    _rule("crash-cancelled", "stopped after a cancellation request", "never",
          r"after a cancellation request|[Cc]ancellation requested"),
    _rule("infra-oom", "killed for running out of memory (OOMKilled)", "oom",
          r"\bOOMKilled\b|\bout[- ]of[- ]memory\b|terminated due to high memory usage"),
    _rule("infra-evicted", "evicted by the infrastructure", "infra",
          r"\bEvicted\b|\b(?:[Pp]od|[Cc]ontainer '[^'\n]*') was evicted\b|[Tt]he node was low on resource"
          r"|\bEvictionByEvictionAPI\b|\bTerminationByKubelet\b"),
    _rule("infra-preempted", "preempted by the infrastructure (a spot node reclaimed, or a higher-priority pod)",
          "infra", r"\b[Pp]reempted\b|\bPreemptionBy\w+"),
    _rule("infra-node-lost", "its node was lost or shut down", "infra",
          r"\bNodeLost\b|\b(?:Node)?NotReady\b|\bDeletionByTaintManager\b|imminent node shutdown"
          r"|[Nn]ode \S+ which was running pod \S+ is unresponsive"),
    _rule("infra-pod-never-started", "its pod never started", "infra",
          r"\bPod never started\b|No active or succeeded pods found for any job"),
    _rule("infra-sigterm", "terminated by its infrastructure (SIGTERM)", "infra",
          r"aborted by a termination signal|\bSIGTERM\b|\bTerminationSignal\b"
          r"|(?:status|exit) code:? (?:-15|143)\b"),
    _rule("infra-sigkill", "killed with SIGKILL (the out-of-memory killer, or a kill -9)", "oom",
          r"(?:status|exit) code:? (?:-9|137)\b|\bSIGKILL\b|^Killed\s*$"),
)


def match_crash(texts: Iterable[str | None]) -> CrashRule | None:
    """The first rule of `CRASH_RULES` that any of ``texts`` (a crash's state message, its log
    evidence) matches, or None: nothing says the infrastructure caused the crash."""
    joined = "\n".join(t for t in texts if t)
    return next((rule for rule in CRASH_RULES if rule.pattern.search(joined)), None)


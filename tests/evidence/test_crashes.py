"""Which crashes the infrastructure caused (issue 29): every rule is tested with the messages its
source writes, quoted from that source (Prefect 3.8.8 as installed here, prefect-kubernetes and
Kubernetes from their repositories), and the precedence between rules holds."""

from __future__ import annotations

import signal

import pytest

from prefect_failure_insights.evidence.crashes import CRASH_RULES, match_crash

# (message, rule id, where it is written)
MESSAGES = [
    # -- Prefect --------------------------------------------------------------------------------
    ("Execution was aborted by a termination signal.", "infra-sigterm",
     "prefect/states.py:220 exception_to_crashed_state (TerminationSignal): the engine's Crashed state"),
    ("Flow run process exited with non-zero status code -15.", "infra-sigterm",
     "prefect/runner/runner.py:1496 (a served deployment's process ended by SIGTERM)"),
    ("Process exited with status code: -15. Process exited due to a SIGTERM signal. Typically caused by graceful "
     "shutdown or manual cancellation.", "infra-sigterm",
     "prefect/runner/_flow_run_executor.py:193 + prefect/_internal/infrastructure_exit_codes.py:40"),
    ("Flow run infrastructure exited with non-zero status code 143. Process received SIGTERM via the container "
     "runtime. This is the containerized equivalent of exit code -15.", "infra-sigterm",
     "prefect/workers/base.py:1715 + prefect/_internal/infrastructure_exit_codes.py:86"),
    ("Flow run process exited with non-zero status code -9.", "infra-sigkill",
     "prefect/runner/runner.py:1496 (SIGKILL: the OOM killer or a kill -9)"),
    ("Flow run infrastructure exited with non-zero status code -9. Process exited due to a SIGKILL signal. "
     "Typically caused by the operating system terminating the process for exceeding memory limits, or by manual "
     "cancellation.", "infra-sigkill",
     "prefect/workers/base.py:1715 + prefect/_internal/infrastructure_exit_codes.py:27"),
    ("Flow run infrastructure exited with non-zero status code 137. Process was killed, likely due to an "
     "out-of-memory (OOM) condition.", "infra-oom",
     "prefect/workers/base.py:1715 + prefect/_internal/infrastructure_exit_codes.py:78"),
    ("Flow run infrastructure exited with non-zero status code 247. Process was terminated due to high memory "
     "usage.", "infra-oom",
     "prefect/workers/base.py:1715 + prefect/_internal/infrastructure_exit_codes.py:97"),
    ("Flow run process exited after a cancellation request, but the runner could not durably persist a Cancelled "
     "terminal state.", "crash-cancelled",
     "prefect/runner/_cancel_finalizer.py:61-66"),
    # -- prefect-kubernetes (PrefectHQ/prefect src/integrations/prefect-kubernetes) ----------------
    ("Job 'brave-otter-x7k2p': Pod never started.", "infra-pod-never-started",
     "prefect_kubernetes/worker.py KubernetesWorker._get_job_pod (logged to the flow run's logs)"),
    ("No active or succeeded pods found for any job", "infra-pod-never-started",
     "prefect_kubernetes/observer.py _mark_flow_run_as_crashed: the Crashed state's message"),
    ("Pod was evicted: The pod was evicted from its node. The node was low on resource: memory. Resolution: Check "
     "node conditions for resource pressure.", "infra-evicted",
     "prefect_kubernetes/diagnostics.py _check_evicted, logged by observer.py to the flow run's logs"),
    ("Container 'prefect-job' was evicted: The pod was evicted, likely due to node resource pressure (disk, memory, "
     "or PID exhaustion).", "infra-evicted",
     "prefect_kubernetes/diagnostics.py _check_container_terminated (reason Evicted)"),
    ("Container 'prefect-job' was killed due to out-of-memory (OOMKilled): The container exceeded its memory limit "
     "and was terminated by the kernel OOM killer.", "infra-oom",
     "prefect_kubernetes/diagnostics.py _check_container_terminated (reason OOMKilled)"),
    # -- Kubernetes itself (pod status reason/message, events, DisruptionTarget condition reasons) --
    ("The node was low on resource: ephemeral-storage. Container prefect-job was using 10619440Ki, which exceeds "
     "its request of 0.", "infra-evicted", "kubelet eviction manager: the evicted pod's status message"),
    ("Preempted by pod 3f0c2d1e-9b7a-4c1e-8f5d-2a6b7c8d9e0f on node gke-pool-1-abc", "infra-preempted",
     "kube-scheduler framework/preemption: the victim pod's Preempted event"),
    ("DisruptionTarget: PreemptionByScheduler", "infra-preempted", "k8s core/v1 PodReasonPreemptionByScheduler"),
    ("Pod was terminated in response to imminent node shutdown.", "infra-node-lost",
     "kubelet nodeshutdown/nodeshutdown_manager_linux.go: the pod's status message (spot/preemptible node)"),
    ("DisruptionTarget: DeletionByTaintManager", "infra-node-lost",
     "k8s core/v1 PodReasonDeletionByTaintManager: node not-ready/unreachable taint"),
    ("Node gke-pool-1-abc which was running pod brave-otter-x7k2p is unresponsive", "infra-node-lost",
     "node lifecycle controller (reason NodeLost)"),
    ("Warning  NodeNotReady  node/gke-pool-1-abc  Node gke-pool-1-abc status is now: NodeNotReady", "infra-node-lost",
     "kubelet/node controller event"),
    ("DisruptionTarget: TerminationByKubelet", "infra-evicted", "k8s core/v1 PodReasonTerminationByKubelet"),
    ("Killed", "infra-sigkill", "a shell's report of a SIGKILLed child, alone on its line"),
]


@pytest.mark.parametrize(("message", "rule", "source"), MESSAGES, ids=[f"{m[1]}:{m[0][:40]}" for m in MESSAGES])
def test_each_message_from_its_source_matches_its_rule(message: str, rule: str, source: str) -> None:
    matched = match_crash([message])
    assert matched is not None and matched.id == rule, f"{source}: {matched.id if matched else None}"


def test_prefects_own_messages_as_prefect_builds_them() -> None:
    """The same messages built by the installed Prefect, so that a new Prefect that words them
    differently fails here rather than in production."""
    import asyncio

    from prefect.exceptions import TerminationSignal
    from prefect.states import exception_to_crashed_state

    state = asyncio.run(exception_to_crashed_state(TerminationSignal(signal.SIGTERM)))
    assert state.type.value == "CRASHED" and match_crash([state.message]).id == "infra-sigterm"
    exits = pytest.importorskip("prefect._internal.infrastructure_exit_codes")
    for code, rule in [(-15, "infra-sigterm"), (143, "infra-sigterm"), (-9, "infra-sigkill"), (137, "infra-oom"),
                       (247, "infra-oom")]:
        info = exits.get_infrastructure_exit_info(code)
        message = f"Flow run infrastructure exited with non-zero status code {code}. {info.explanation}"
        assert match_crash([message]).id == rule, message


@pytest.mark.parametrize("message", [
    "Flow run infrastructure exited with non-zero status code 1. Process exited with a general error.",
    "Flow run infrastructure exited with non-zero status code 127. Command not found.",
    "Flow run could not start: [Errno 2] No such file or directory: 'python3.99'",
    "Execution was interrupted by an unexpected exception: ValueError: bad config",
    "Evicting 3 entries from the local cache",  # a user's log line: not Kubernetes' reason
    "the key was evicted from redis",
    "Killed 3 zombie worker threads",
    "exit code 1370",
    "",
])
def test_crashes_that_say_nothing_about_the_infrastructure_match_no_rule(message: str) -> None:
    assert match_crash([message]) is None


def test_the_most_specific_cause_wins() -> None:
    """An evicted pod's process also gets a SIGTERM (the state message says only that), and an
    OOM-killed container exits 137 like any SIGKILL: the evidence naming the cause decides."""
    sigterm = "Execution was aborted by a termination signal."
    evicted = "Pod was evicted: The pod was evicted from its node. The node was low on resource: memory."
    oom = "Container 'prefect-job' was killed due to out-of-memory (OOMKilled): The container exceeded its memory"
    assert match_crash([sigterm, evicted]).id == "infra-evicted"
    assert match_crash(["Flow run process exited with non-zero status code -9.", oom]).id == "infra-oom"
    assert match_crash([sigterm, oom, evicted]).id == "infra-oom"  # never retried without --oom
    cancel = "Flow run process exited after a cancellation request, but the runner could not durably persist"
    assert match_crash([cancel, "Process exited with status code: -15. SIGTERM"]).id == "crash-cancelled"
    assert match_crash([None, "", sigterm]).id == "infra-sigterm"


def test_the_rules_are_one_table_with_unique_ids() -> None:
    ids = [rule.id for rule in CRASH_RULES]
    assert len(ids) == len(set(ids)) and {r.kind for r in CRASH_RULES} == {"infra", "oom", "never"}
    assert {m[1] for m in MESSAGES} == set(ids)  # every rule has a message from its source

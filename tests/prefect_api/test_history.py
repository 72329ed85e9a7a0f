"""What differed between a failed run and the deployment's run that completed after it."""

from __future__ import annotations

from uuid import uuid4

from prefect.client.schemas.objects import FlowRun

from prefect_failure_insights.prefect_api.history import CHANGED_NAMES, changes


def _run(**fields) -> FlowRun:
    return FlowRun(id=uuid4(), flow_id=uuid4(), name="r", **fields)


def test_versions_queue_and_the_names_not_the_values_of_changed_parameters() -> None:
    failed = _run(deployment_version="3", flow_version="a1", work_queue_name="default",
                  parameters={"password": "hunter2", "limit": 10, "same": 1}, job_variables={"memory": "2Gi"})
    fixed = _run(deployment_version="4", flow_version="a1", work_queue_name="big",
                 parameters={"password": "s3cret-new", "limit": 10, "same": 1, "added": True},
                 job_variables={"memory": "8Gi"})
    said = changes(failed, fixed)
    assert said == ["deployment version 3 → 4", "work queue default → big", "parameters changed: added, password",
                    "job variables changed: memory"]
    assert not any(secret in " ".join(said) for secret in ("hunter2", "s3cret-new", "2Gi", "8Gi"))


def test_nothing_changed_and_many_names() -> None:
    assert changes(_run(parameters={"a": 1}), _run(parameters={"a": 1})) == []
    many = changes(_run(parameters={}), _run(parameters={f"p{i}": i for i in range(CHANGED_NAMES + 3)}))
    assert many == ["parameters changed: p0, p1, p2, p3, p4 and 3 more"]

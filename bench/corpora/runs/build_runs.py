"""Build bench/corpora/runs/runs.jsonl from the compact spec in spec.py (reconstructions of public threads)."""
import json, random, re, uuid, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from spec_runs import RUNS
texts = {json.loads(l)["id"]: json.loads(l) for l in open(Path(__file__).parents[1] / "texts" / "texts.jsonl")}
out = []
def ts(i): return f"2026-11-10T02:{i // 60:02d}:{i % 60:02d}+00:00"
for n, r in enumerate(RUNS, 1):
    rid = f"r{n:03d}"
    base = texts.get(r.get("text"))
    if base:
        source, label, split, error = base["source"], base["label"], base["split"], r.get("error", base["error_text"])
        exc = r.get("exc", base["exception_type"])
    else:
        url = r["url"]; m = re.match(r"https://github.com/([^/]+/[^/]+)/(?:issues|pull)/(\d+)", url)
        source = f"{m.group(1)}#{m.group(2)} ({url})"; label = r["label"]; error = r["error"]; exc = r.get("exc", "")
        split = "frozen" if random.Random(f"issue26-frozen-{rid}").random() < 0.3 else "dev"
    rng = random.Random(rid)
    fid = str(uuid.UUID(int=rng.getrandbits(128)))
    flow, task, name = r["flow"], r.get("task"), r.get("run_name", "brave-otter")
    logs, task_runs = [], []
    def log(level, msg, logger="prefect.flow_runs", task_run=None):
        logs.append({"timestamp": ts(len(logs)), "level": level, "name": logger, "message": msg, "task_run_name": task_run})
    log("INFO", f"Beginning flow run '{name}' for flow '{flow}'")
    for t in r.get("before", []):
        log("INFO", f"Created task run '{t}-0' for task '{t}'")
        log("INFO", "Finished in state Completed()", "prefect.task_runs", f"{t}-0")
        task_runs.append({"name": f"{t}-0", "state": "Completed", "message": ""})
    for line in r.get("info", []):
        lvl, _, msg = line.partition(": ") if line.split(": ")[0] in ("INFO", "WARNING", "ERROR") else ("INFO", "", line)
        log(lvl, msg, "prefect.flow_runs" if not task else "prefect.task_runs", f"{task}-0" if task else None)
    state, state_type = r.get("state", "Failed"), r.get("state_type", "FAILED")
    short = (exc or "Exception").rsplit(".", 1)[-1]
    first = [l for l in error.strip().splitlines() if l.strip()][-1].strip()
    if r.get("kind", "task") == "task":
        runs_n = r.get("run_count", 1)
        tb = ("Traceback (most recent call last):\n"
              f"  File \"/opt/prefect/flows/{flow.replace('-', '_')}.py\", line {40 + n}, in {task}\n"
              f"    {r.get('call', 'result = run()')}\n")
        if not r.get("traceback_in_error"):
            body = tb + error.strip()
        else:
            body = "Traceback (most recent call last):\n" + error.strip()
        for attempt in range(1, runs_n):
            log("ERROR", f"Task run failed with exception: {short}({first[:300]!r}) - Retry {attempt}/{runs_n - 1} will start 10 second(s) from now", "prefect.task_runs", f"{task}-0")
        log("INFO", f"Created task run '{task}-0' for task '{task}'")
        log("ERROR", f"Task run failed with exception: {short}({first[:300]!r}) - Retries are exhausted\n{body}", "prefect.task_runs", f"{task}-0")
        tmsg = r.get("task_message", f"Task run encountered an exception {short}: {first[:200]}")
        log("ERROR", f"Finished in state {r.get('task_state', 'Failed')}('{tmsg}')", "prefect.task_runs", f"{task}-0")
        task_runs.append({"name": f"{task}-0", "state": r.get("task_state", "Failed"), "state_type": "FAILED", "message": tmsg, "run_count": runs_n})
        for t in r.get("after", []):
            task_runs.append({"name": f"{t}-0", "state": "NotReady", "state_type": "PENDING", "message": "Upstream task run did not reach a 'COMPLETED' state."})
        smsg = r.get("state_message", f"Flow run encountered an exception: {short}: {first[:200]}")
        log("ERROR", f"Encountered exception during execution: {short}: {first[:200]}")
    else:
        if task:
            log("INFO", f"Created task run '{task}-0' for task '{task}'")
            task_runs.append({"name": f"{task}-0", "state": "Running", "state_type": "RUNNING", "message": ""})
        # Prefect logs a traceback as one record; a worker's lines are records of their own.
        records = [error.strip()] if "Traceback" in error else error.strip().splitlines()
        for line in records:
            log(r.get("error_level", "ERROR"), line, r.get("error_logger", "prefect.flow_runs.worker"))
        smsg = r["state_message"]
    log("ERROR" if state_type != "CRASHED" else "ERROR", f"Finished in state {state}('{smsg}')")
    bundle = {"flow_run_id": fid, "flow_run_name": name, "flow_name": flow, "deployment": r.get("deployment", f"{flow}/prod"),
              "tags": r.get("tags", []), "work_pool": r.get("work_pool", "k8s-pool"), "state": state, "state_type": state_type,
              "state_message": smsg, "run_count": 1, "task_runs": task_runs, "logs": logs}
    out.append({"id": rid, "split": split, "source": source, "based_on": r.get("text"), "label": label,
                "failed_task": task, "crash_reason": r.get("crash"), "facts": r["facts"], "notes": r.get("notes", ""),
                "bundle": bundle})
with open(Path(__file__).parent / "runs.jsonl", "w") as f:
    for o in out:
        f.write(json.dumps(o, ensure_ascii=False) + "\n")
print(len(out), sum(o["split"] == "frozen" for o in out))

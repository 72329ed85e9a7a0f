"""Check the evaluation corpora: fields, labels, splits, provenance, and no overlap with the
shipped training corpus. `python bench/corpora/validate.py` exits 1 on the first problem."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LABELS = {"INPUT_DATA_QUALITY", "THIRD_PARTY_SYSTEM", "WORKFLOW_ENGINE", "UNKNOWN"}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def thread(source: str) -> str:
    return source.split(" (")[0]


def main() -> int:
    problems = []
    texts = rows(HERE / "texts" / "texts.jsonl")
    runs = rows(HERE / "runs" / "runs.jsonl")
    shipped = {thread(r["source"]) for r in rows(ROOT / "prefect_failure_insights" / "analysis" / "data" / "corpus.jsonl")
               if r.get("source")}
    by_id = {t["id"]: t for t in texts}
    for t in texts:
        for key in ("id", "split", "source", "error_text", "label", "rationale"):
            if not t.get(key):
                problems.append(f"{t.get('id')}: no {key}")
        if t["label"] not in LABELS or t["split"] not in ("dev", "frozen") or "https://" not in t["source"]:
            problems.append(f"{t['id']}: bad label, split or source")
        if thread(t["source"]) in shipped:
            problems.append(f"{t['id']}: its thread is in the shipped training corpus")
    if len({thread(t["source"]) for t in texts}) != len(texts):
        problems.append("texts: a thread appears twice")
    for r in runs:
        if r["label"] not in LABELS or not r["facts"] or "https://" not in r["source"]:
            problems.append(f"{r['id']}: bad label, facts or source")
        if r["based_on"] and by_id[r["based_on"]]["split"] != r["split"]:
            problems.append(f"{r['id']}: split differs from its text {r['based_on']}")
        if thread(r["source"]) in shipped:
            problems.append(f"{r['id']}: its thread is in the shipped training corpus")
        b = r["bundle"]
        if r["failed_task"] and not any(t["name"].startswith(r["failed_task"]) for t in b["task_runs"]):
            problems.append(f"{r['id']}: failed task not among the task runs")
    for p in problems:
        print(p)
    print(f"{len(texts)} texts ({sum(t['split'] == 'frozen' for t in texts)} frozen), "
          f"{len(runs)} runs ({sum(r['split'] == 'frozen' for r in runs)} frozen): "
          + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

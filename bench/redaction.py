"""Benchmark: secret redaction, on the independent corpus and on logs generated for it.

Quality, on `tests/fixtures/secrets` (secret formats from public scanner rule sets, values
generated; look-alikes that must survive), each secret planted in every place text enters
a summary (the same placements as `tests/redaction/test_corpus.py`), reported by split:
``dev`` (what the rules were tuned on) and ``frozen`` (held out while tuning).
Speed: 1,000,000 generated pipeline log lines (Prefect, dbt, HTTP, SQL, Kubernetes,
secrets planted in 0.5 % of them), and the time redaction adds to reading one summary's
logs (1,000 and 20,000 lines).

Baselines in the same run: the redactor of the previous release (read from git,
`9321b99:tasks/redaction.py`), and Yelp's detect-secrets (`scan_line`, default plugins,
every value it reports removed) when it is installed.

Leaking formats, on `bench/corpora/secrets` (issue 25: shapes from public scanner rules and from
public issues where logs leaked; families that leaked before, a private key logged one record per
line, look-alikes), by split: ``dev`` (what the rules were tuned on) and ``frozen`` (set aside
before tuning). Multi-record items go through `LogRedactor` (state across a stream's records)
when the source has one, else each record through `Redactor`. ``--src DIR`` measures another copy
of the source (e.g. ``git archive`` of an earlier commit); ``--corpus-only`` skips the rest.

Usage: python bench/redaction.py [--src DIR] [--corpus-only] [LINES=1000000]
"""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "secrets"
CORPUS = ROOT / "bench" / "corpora" / "secrets"
PREVIOUS = "9321b99:tasks/redaction.py"


def _previous() -> Callable[[str], str] | None:
    """The previous release's redactor, from git (None outside a clone)."""
    try:
        source = subprocess.run(["git", "-C", str(ROOT), "show", PREVIOUS], capture_output=True, text=True,
                                check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "previous_redaction.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("previous_redaction", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["previous_redaction"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return lambda text: module.Redactor().redact(text)


def _detect_secrets() -> Callable[[str], str] | None:
    try:
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import default_settings
    except ImportError:
        return None

    configured = default_settings()  # its plugins, configured once for the whole benchmark
    configured.__enter__()

    def redact(text: str, _keep=configured) -> str:
        for line in text.split("\n"):
            for found in scan_line(line):
                if found.secret_value and len(found.secret_value) >= 4:
                    text = text.replace(found.secret_value, "[REDACTED]")
        return text

    return redact


def _ours() -> Callable[[str], str]:
    from prefect_failure_insights.redaction import Redactor

    return lambda text: Redactor().redact(text)


def _corpus(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def _placements() -> tuple[list[str], Callable[[str, str], dict], Callable]:
    sys.path.insert(0, str(ROOT / "tests"))
    spec = importlib.util.spec_from_file_location("corpus_test", ROOT / "tests" / "redaction" / "test_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.PLACEMENTS, module._bundle, module._outputs


def quality(methods: dict[str, Callable[[str], str]]) -> None:
    secrets, lookalikes = _corpus("secrets.jsonl"), _corpus("lookalikes.jsonl")
    print("== Redaction quality: the corpus line as it is ==")
    print(f"{'method':<26} {'split':<7} {'formats':>8} {'entries redacted':>17} {'look-alikes kept':>17}")
    for name, redact in methods.items():
        for split in ("dev", "frozen"):
            rows = [e for e in secrets if e["split"] == split]
            ok = [e for e in rows if not any(s in redact(e["line"]) for s in e["secrets"])]
            formats = {e["format"] for e in rows}
            leaked = {e["format"] for e in rows if e not in ok}
            looks = [e for e in lookalikes if e["split"] == split]
            kept = [e for e in looks if all(k in redact(e["line"]) for k in e["keep"])]
            print(f"{name:<26} {split:<7} {len(formats) - len(leaked):>3}/{len(formats):<4} "
                  f"{len(ok):>8}/{len(rows):<8} {len(kept):>8}/{len(looks):<8}")
    placements, bundle_of, outputs_of = _placements()
    from prefect_failure_insights.bundles.format import Bundle

    print("\n== Ours, every placement -> every output (evidence, prompt, row, artifact, batch, bundle) ==")
    for split in ("dev", "frozen"):
        rows = [e for e in secrets if e["split"] == split]
        leaks = 0
        for entry in rows:
            for placement in placements:
                texts = outputs_of(Bundle.model_validate(bundle_of(entry["line"], placement)))
                leaks += any(s in t for t in texts.values() for s in entry["secrets"])
        print(f"{split:<7} {len(rows) * len(placements):>5} (entry, placement) pairs, {leaks} with a leak")


def _log_lines(n: int, seed: int = 11) -> list[str]:
    """Pipeline log lines generated for this benchmark; 0.5 % carry a corpus secret."""
    rnd = random.Random(seed)
    secrets = [e["line"] for e in _corpus("secrets.jsonl")]
    looks = [e["line"] for e in _corpus("lookalikes.jsonl")]
    shapes = [
        lambda: f"Executing 'load_partition-{rnd.randint(0, 999):03x}' immediately...",
        lambda: f"Finished in state Completed() after {rnd.random() * 9:.2f}s",
        lambda: f"Created task run 'transform-{rnd.randint(0, 9999)}' for task 'transform'",
        lambda: f"{rnd.randint(1, 40)} of 40 OK created sql table model analytics.fct_orders_{rnd.randint(1, 9)} "
                f"[SELECT {rnd.randint(1, 99999)} in {rnd.random() * 20:.2f}s]",
        lambda: f"HTTP Request: GET https://api.vendor.example/v2/orders?page={rnd.randint(1, 500)}&limit=200 "
                f'"HTTP/1.1 200 OK"',
        lambda: f"INFO sqlalchemy.engine.Engine SELECT orders.id, orders.amount FROM orders WHERE orders.day = "
                f"%(day_1)s [cached since {rnd.random() * 900:.1f}s ago] {{'day_1': '2026-11-{rnd.randint(1, 28)}'}}",
        lambda: f"wrote s3://acme-lake/raw/orders/dt=2026-11-{rnd.randint(1, 28)}/part-{rnd.randint(0, 9999):05d}"
                f"-{rnd.getrandbits(64):016x}.parquet ({rnd.randint(1, 900)} MB)",
        lambda: f"Pod etl-worker-{rnd.getrandbits(20):05x}-{rnd.getrandbits(20):05x} phase Running, "
                f"node ip-10-0-{rnd.randint(0, 255)}-{rnd.randint(0, 255)}.ec2.internal",
        lambda: f"processed batch {rnd.randint(0, 99999)}: {rnd.randint(100, 9999)} rows, 0 rejected, "
                f"key=order_id partition_key=2026-11-{rnd.randint(1, 28)}",
        lambda: f"Using connection ID 'warehouse' (postgresql://etl@warehouse.internal:5432/analytics)",
    ]
    out = []
    for i in range(n):
        r = rnd.random()
        out.append(rnd.choice(secrets) if r < 0.005 else rnd.choice(looks) if r < 0.01 else rnd.choice(shapes)())
    return out


def speed(methods: dict[str, Callable[[str], str]], n: int) -> None:
    lines = _log_lines(n)
    print(f"\n== Redaction speed: {n:,} generated log lines ==")
    for name, redact in methods.items():
        sample = lines if name.startswith("ours") else lines[: max(n // 50, 1000)]
        started = time.perf_counter()
        for line in sample:
            redact(line)
        elapsed = time.perf_counter() - started
        print(f"{name:<26} {len(sample) / elapsed:>10,.0f} lines/s ({len(sample):,} lines in {elapsed:.2f} s)")


def per_summary() -> None:
    """What redacting every line as it is read adds to reading one run's logs."""
    import csv

    from prefect_failure_insights.prefect_api.logs import RunLogs
    from prefect_failure_insights.redaction import Redactor

    class Identity(Redactor):
        def redact(self, text: str) -> str:
            return text

    print("\n== Time redaction adds to one summary (reading the run's logs through RunLogs.lines) ==")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (1_000, 20_000):
            path = Path(tmp) / f"{size}.csv"
            with path.open("w", newline="") as fh:
                writer = csv.writer(fh)
                for i, line in enumerate(_log_lines(size, seed=size)):
                    writer.writerow((f"2026-11-20T02:00:00.{i:06d}+00:00", 20, "", line, ""))
            logs = RunLogs({"run": path}, None, "bench", read_ms=0.0, line_count=size)
            timing = {}
            for name, redactor in (("without", Identity()), ("with", Redactor())):
                best = float("inf")
                for _ in range(3):
                    started = time.perf_counter()
                    sum(1 for _ in logs.lines(redactor))
                    best = min(best, time.perf_counter() - started)
                timing[name] = best
            print(f"{size:>7,} lines: read {timing['without'] * 1000:7.1f} ms without redaction, "
                  f"{timing['with'] * 1000:7.1f} ms with: +{(timing['with'] - timing['without']) * 1000:.1f} ms")


def _records_redactor() -> tuple[str, Callable[[list[str]], list[str]]]:
    """How ours redacts consecutive records of one stream: `LogRedactor` when the source has it."""
    from prefect_failure_insights import redaction

    if hasattr(redaction, "LogRedactor"):
        def redact(records: list[str]) -> list[str]:
            log = redaction.LogRedactor(redaction.Redactor())
            return [log.redact(r, stream="run") for r in records]

        return "LogRedactor", redact
    return "Redactor per record", lambda records: [redaction.Redactor().redact(r) for r in records]


def corpus_quality() -> None:
    """Leaking formats of bench/corpora/secrets, by split and family."""
    from collections import Counter

    from prefect_failure_insights.redaction import Redactor

    items = [json.loads(ln) for ln in (CORPUS / "corpus.jsonl").read_text().splitlines() if ln.strip()]
    looks = [json.loads(ln) for ln in (CORPUS / "lookalikes.jsonl").read_text().splitlines() if ln.strip()]
    how, records = _records_redactor()
    print(f"== bench/corpora/secrets ({len(items)} items; records through {how}) ==")
    print(f"{'split':<7} {'leaking formats':>16} {'items leaking':>14} {'look-alikes kept':>17}  leaking families")
    for split in ("dev", "frozen", "all"):
        rows = [e for e in items if split in ("all", e["split"])]
        leaking: Counter[str] = Counter()
        leaked_formats = set()
        for e in rows:
            out = "\n".join(records(e["records"])) if "records" in e else Redactor().redact(e["line"])
            if any(s in out for s in e["secrets"]):
                leaked_formats.add(e["format"])
                leaking[e["family"]] += 1
        kept = [e for e in looks if split in ("all", e["split"])
                if all(k in Redactor().redact(e["line"]) for k in e["keep"])]
        total_looks = sum(1 for e in looks if split in ("all", e["split"]))
        formats = {e["format"] for e in rows}
        print(f"{split:<7} {len(leaked_formats):>7} of {len(formats):<6} {sum(leaking.values()):>5} of {len(rows):<6}"
              f" {len(kept):>7} of {total_looks:<7}  {dict(sorted(leaking.items()))}")
        if split == "dev" or (split == "frozen" and "--show-frozen" in sys.argv):  # frozen: counts only
            print(f"        leaking: {', '.join(sorted(leaked_formats)) or 'none'}")


def main() -> None:
    args = sys.argv[1:]
    if "--src" in args:
        at = args.index("--src")
        sys.path.insert(0, args[at + 1])
        del args[at:at + 2]
    corpus_only = "--corpus-only" in args
    args = [a for a in args if a not in ("--corpus-only", "--show-frozen")]
    corpus_quality()
    if corpus_only:
        return
    n = int(args[0]) if args else 1_000_000
    methods = {"ours": _ours()}
    previous = _previous()
    if previous is not None:
        methods["previous release"] = previous
    detect = _detect_secrets()
    if detect is not None:
        methods["detect-secrets 1.x"] = detect
    quality(methods)
    speed(methods, n)
    per_summary()


if __name__ == "__main__":
    main()

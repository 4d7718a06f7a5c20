"""`glt sweep --status DIR`: where every trial of a sweep stands."""

from __future__ import annotations

import datetime
from pathlib import Path

from glt.errors import GLTError
from glt.io import read_json
from glt.sweeps.launchers import JOBS_FILE
from glt.sweeps.records import all_trials, is_alive
from glt.sweeps.runner import status_counts, summary_line


def status_text(out: str | Path) -> str:
    out = Path(out)
    trials = all_trials(out)
    if not trials:
        raise GLTError(f"{out} holds no sweep trials (no trials/*/*/trial.json)")
    jobs = read_json(out / JOBS_FILE, "job list") if (out / JOBS_FILE).is_file() else {}
    lines = [summary_line(status_counts(out))]
    for path, rec in trials:
        status = rec.status
        if status == "running" and is_alive(rec) is False:
            status = "stopped"  # its process is gone: a re-run resumes it
        when = datetime.datetime.fromtimestamp(rec.updated).strftime("%Y-%m-%d %H:%M") if rec.updated else "-"
        job = jobs.get(str(path.relative_to(out)))
        parts = [f"{rec.method}/{rec.trial}", status, f"seeds {len(rec.seeds_done)}/{len(rec.seeds)}", when]
        if job:
            parts.append(f"job {job}")
        if rec.draw:
            parts.append(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in sorted(rec.draw.items())))
        if rec.error:
            parts.append(f"error: {rec.error}")
        lines.append("  ".join(parts))
    return "\n".join(lines)

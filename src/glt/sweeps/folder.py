"""The sweep folder itself: which folders a sweep may write into."""

from __future__ import annotations

from pathlib import Path

from glt.runtime.layout import SWEEP_FILE


def check_sweep_out(out: Path) -> None:
    """A new folder, a sweep this code started (sweep.json), or a `glt sweep` folder of before (runs/ only)."""
    from glt.runtime.run_dir import check_output_folder

    check_output_folder(out)
    if not (out / SWEEP_FILE).is_file():
        from glt.experiment import check_sweep_folder

        check_sweep_folder(out)

"""The layer that both the methods and the training loop stand on: process-group helpers
(`distributed`), checkpoint files and seeding (`checkpoint`), the names of every file glt writes
(`layout`), and the training folder (`run_dir`, with `lock`, `owned_files` and `output_paths`).
It imports nothing of glt above glt.errors / glt.io / glt.mapping."""

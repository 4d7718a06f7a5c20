"""The layer that both the methods and the training loop stand on: process-group helpers
(`distributed`), checkpoint files and seeding (`checkpoint`), and the run folder (`run_dir`).
It imports nothing of glt above glt.errors / glt.io / glt.mapping."""

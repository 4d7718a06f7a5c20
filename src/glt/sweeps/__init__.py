"""Sweeps: many methods x hyper-parameter trials x seeds, each trial recorded in OUT/trials/<method>/<trial>/trial.json
and started by a launcher (local, torchrun, slurm). docs/search.md."""

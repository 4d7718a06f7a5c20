"""The one training loop, its checkpoints, schedules and prediction."""

"""Runs: starting them, executing their steps in workers, recording what happened and cost."""

"""The history database: runs of provider calls (and, later, conversations, jobs, audit)."""

from gateway.history.store import HistoryStore, RunStart, rows_to_public, run_to_public

__all__ = ["HistoryStore", "RunStart", "run_to_public", "rows_to_public"]

"""Restart pacing: the first restart is immediate, then the delay doubles up to a cap; a
stable run (STABLE_RUN_S) forgets earlier failures. Under `on-failure` a replica that fails
fast GIVE_UP_AFTER times in a row is given up (state `failed`).
"""

INITIAL_S = 0.2
MAX_S = 30.0
STABLE_RUN_S = 10.0
GIVE_UP_AFTER = 5


class Backoff:
    def __init__(self):
        self.fast_failures = 0  # consecutive runs shorter than STABLE_RUN_S

    def record_exit(self, run_s):
        """Account for one run; return how long to wait before the next start."""
        if run_s >= STABLE_RUN_S:
            self.fast_failures = 0
        delay = 0.0 if self.fast_failures == 0 else min(MAX_S, INITIAL_S * 2 ** (self.fast_failures - 1))
        self.fast_failures += 1
        return delay

    def exhausted(self):
        return self.fast_failures >= GIVE_UP_AFTER

"""Token format and the failed-authentication limiter."""

from goship_ctl.auth import tokens
from goship_ctl.auth.ratelimit import MAX_TRACKED_CLIENTS, FailureLimiter


def test_token_round_trip():
    issued = tokens.new_token()
    token_id, secret = tokens.split(issued.plaintext)
    assert token_id == issued.token_id and tokens.secret_matches(secret, issued.secret_sha256)
    assert secret not in issued.secret_sha256 and not tokens.secret_matches(secret + "x", issued.secret_sha256)
    assert tokens.new_token().plaintext != issued.plaintext


def test_malformed_tokens_are_not_tokens():
    for text in ("", "gsp_", "gsp_zzzzzzzzzzzz_" + "a" * 43, "xyz_000000000000_" + "a" * 43, "gsp_000000000000_short"):
        assert tokens.split(text) is None


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_limiter_blocks_after_max_failures_until_the_window_passes():
    clock = Clock()
    limiter = FailureLimiter(max_failures=3, window_s=60, clock=clock)
    for count in (1, 2):
        assert limiter.record_failure("10.0.0.1") == count
        assert limiter.retry_after("10.0.0.1") == 0
    limiter.record_failure("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 60
    assert limiter.retry_after("10.0.0.2") == 0
    clock.now += 45
    assert limiter.retry_after("10.0.0.1") == 15
    clock.now += 15
    assert limiter.retry_after("10.0.0.1") == 0


def test_limiter_forgets_quiet_clients():
    clock = Clock()
    limiter = FailureLimiter(max_failures=3, window_s=10, clock=clock)
    for index in range(MAX_TRACKED_CLIENTS):
        limiter.record_failure("client-%d" % index)
    clock.now += 11
    limiter.record_failure("newcomer")
    assert len(limiter._failures) == 1  # pylint: disable=protected-access

"""Secrets in guest_init (host process, --debug so every request is logged): an app's secret env
value never shows in replies (apply, status, errors), in `logs` even when the app prints it,
or in guest_init's own log lines; the persisted spec that must hold it is private (0600 in a
0700 directory)."""

import json
import os
import stat

from supervisor_helpers import process_app, supervised, wait_status

SECRET = "guest-secret-%d-value" % os.getpid()


def test_secret_env_values_stay_out_of_replies_logs_and_the_log_file():
    app = process_app("leaky", "echo out=$TOKEN; echo err=$TOKEN >&2; sleep 600",
                      env={"TOKEN": {"value": SECRET, "secret": True}, "PLAIN": "shown"})
    replies = []
    with supervised() as (process, channel):
        replies.append(channel.request("apply", {"generation": 1, "apps": [app]}))
        replies.append(channel.request("apply", {"generation": 1, "apps": [app], "dry_run": True}))
        replies.append(wait_status(channel, lambda s: s["apps"]["leaky"]["replicas"][0]["state"] == "ready", 10, "leaky"))
        lines = wait_until_logged(channel)
        replies.append(lines)
        for bad_env in ({"TOKEN": {"value": SECRET, "secret": "yes"}}, {"TOKEN": {"value": SECRET + "\x00", "secret": True}},
                        {"BAD NAME": {"value": SECRET, "secret": True}}, {"TOKEN": {"value": SECRET, "secret": True, "x": 1}}):
            try:
                channel.request("apply", {"generation": 2, "apps": [dict(app, env=bad_env)]})
            except Exception as exc:  # pylint: disable=broad-except  # GuestError: its message is what we check
                replies.append(str(exc))
        spec_path = os.path.join(process.state_dir, "spec.json")
        spec_mode = stat.S_IMODE(os.stat(spec_path).st_mode)
        dir_mode = stat.S_IMODE(os.stat(process.state_dir).st_mode)
        with open(spec_path, encoding="utf-8") as spec:
            persisted = spec.read()
        log = process.log()
    assert len(replies) == 8, replies
    assert SECRET not in json.dumps(replies), "a secret reached a reply"
    assert SECRET not in log, "a secret reached guest_init's log"
    assert "op apply" in log  # --debug did log the requests
    assert {line["text"] for line in lines if line["stream"] != "init"} >= {"out=********", "err=********"}
    assert SECRET in persisted and (spec_mode, dir_mode) == (0o600, 0o700), (oct(spec_mode), oct(dir_mode))


def wait_until_logged(channel):
    """The app's log lines once both of its echoes are in."""
    found = {}

    def both_lines(status):
        found["lines"] = channel.request("logs", {"app": "leaky"})["lines"]
        return sum(line["stream"] in ("stdout", "stderr") for line in found["lines"]) >= 2
    wait_status(channel, both_lines, 10, "the app's output")
    return found["lines"]

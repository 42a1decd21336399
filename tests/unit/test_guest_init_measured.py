"""Measured boot over the protocol: guest_init as a host process with a config drive (--config)
and a declared digest (--measurement), the way a non-confidential VM exercises the verification
(a confidential one reads the digest from its attestation report instead)."""

import json
import os
import shutil
import tempfile
from contextlib import contextmanager

import pytest

from ansible_collections.goship.core.plugins.module_utils import guest_channel as gc
from ansible_collections.goship.core.plugins.module_utils import nocloud_seed
from guest_init_helpers import wait_until
from supervisor_helpers import SupervisedGuestInit, process_app

POLICY = {"apply": "locked", "signal": False, "logs": True, "shutdown": True}


class MeasuredGuestInit(SupervisedGuestInit):
    def __init__(self, directory, config, measurement):
        super().__init__(directory, config=config)
        self.measurement = measurement

    def argv(self):
        return super().argv() + (["--measurement", self.measurement] if self.measurement else [])


@contextmanager
def measured_guest(document, measurement):
    workdir = tempfile.mkdtemp(prefix="gs-m-", dir="/tmp")
    seed = os.path.join(workdir, "seed.iso")
    nocloud_seed.write_iso(seed, nocloud_seed.build_seed_files("i-1", "vault-n1", goship=document))
    process = MeasuredGuestInit(workdir, seed, measurement).start()
    try:
        with gc.GuestChannel(process.socket_path, timeout=5.0) as channel:
            yield process, channel
    finally:
        process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def boot_spec(policy="default"):
    spec = {"project": "vault", "node": "n1", "generation": 4,
            "apps": [process_app("web", "echo started; sleep 300", replicas=2)]}
    if policy is not None:
        spec["policy"] = dict(POLICY) if policy == "default" else policy
    return spec


def converged_status(channel):
    status = channel.request("status")
    return status if status["converged"] else None


def sha256_of(document):
    return "sha256:" + nocloud_seed.measured_digests(document)["sha256"]


def refused(channel, op, args, code):
    with pytest.raises(gc.GuestError) as caught:
        channel.request(op, args)
    assert caught.value.code == code, caught.value
    return str(caught.value)


def test_matching_digest_starts_the_apps_and_the_policy_holds():
    document = boot_spec()
    with measured_guest(document, sha256_of(document)) as (process, channel):
        hello = channel.hello()
        assert hello["measurement"]["state"] == "verified" and hello["measurement"]["source"] == "declared"
        assert hello["measurement"]["expected"] == hello["measurement"]["actual"] == sha256_of(document)[7:]
        assert hello["policy"] == dict(POLICY, debug=False)
        assert "attestation" in hello["ops"]
        status = wait_until(lambda: converged_status(channel), 20, what="the measured apps running")
        assert status["generation"] == 4 and status["measurement"]["state"] == "verified"
        pids = [r["pid"] for r in status["apps"]["web"]["replicas"]]

        # apply: locked. The host re-pushing the measured spec is accepted (and changes nothing)...
        again = channel.request("apply", {"generation": 4, "apps": json.loads(json.dumps(document["apps"]))})
        assert again["accepted"] and again["changes"]["unchanged"] == ["web"]
        # ...anything else is refused, nothing changes
        assert "locks the apps" in refused(channel, "apply", {"generation": 5, "apps": []}, "policy_denied")
        refused(channel, "signal", {"app": "web", "signal": "TERM"}, "policy_denied")  # signal: false
        refused(channel, "debug", {}, "policy_denied")  # never, whatever the policy
        assert channel.request("logs", {"app": "web"})["lines"]  # logs: true
        assert "nothing signs it" in refused(channel, "attestation", {"nonce": "00ff"}, "unsupported")
        assert [r["pid"] for r in channel.request("status")["apps"]["web"]["replicas"]] == pids


def test_mismatching_digest_starts_nothing_and_says_why():
    document = boot_spec()
    tampered = dict(document, apps=[process_app("web", "echo evil; sleep 300", replicas=2)])
    with measured_guest(tampered, sha256_of(document)) as (process, channel):
        hello = channel.hello()
        assert hello["measurement"]["state"] == "mismatch"
        assert sha256_of(document)[7:] in hello["measurement"]["reason"]
        status = channel.request("status")
        assert status["apps"] == {} and status["generation"] is None and status["measurement"]["state"] == "mismatch"
        message = refused(channel, "apply", {"generation": 9, "apps": []}, "measurement_failed")
        assert "not verified (mismatch" in message
        refused(channel, "signal", {"app": "web", "signal": "TERM"}, "measurement_failed")
        assert channel.request("ping") == {}
        assert "starting no app" in process.log()


def test_a_declared_digest_without_a_boot_spec_is_absent():
    workdir = tempfile.mkdtemp(prefix="gs-m-", dir="/tmp")
    process = MeasuredGuestInit(workdir, None, "sha256:" + "42" * 32).start()
    try:
        with gc.GuestChannel(process.socket_path, timeout=5.0) as channel:
            hello = channel.hello()
            assert hello["measurement"]["state"] == "absent" and "no boot spec" in hello["measurement"]["reason"]
            refused(channel, "apply", {"generation": 1, "apps": []}, "measurement_failed")
    finally:
        process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_unmeasured_guest_behaves_as_before_with_its_policy():
    with measured_guest(boot_spec(policy={"apply": "allowed", "shutdown": False}), None) as (process, channel):
        hello = channel.hello()
        assert hello["measurement"]["state"] == "unmeasured" and hello["measurement"]["source"] is None
        wait_until(lambda: channel.request("status")["converged"], 20, what="apps running")
        assert channel.request("apply", {"generation": 5, "apps": []})["accepted"]  # apply: allowed
        refused(channel, "shutdown", {}, "policy_denied")
        refused(channel, "attestation", {"nonce": "00"}, "unsupported")

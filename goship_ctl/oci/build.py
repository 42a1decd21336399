"""Writing an OCI image layout (image-spec 1.0): oci-layout, index.json, blobs/sha256/.

Documents are canonical JSON (sorted keys, no spaces) and the config has no creation
time, so equal layers and process settings give equal digests. The output directory is
written next to its final place and renamed in, replacing an earlier layout.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from goship_ctl.oci.layer import Layer, sha256_digest

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class ProcessConfig:
    """The image config's `config` object: what runs when the app spec says nothing."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    workdir: str = ""
    user: str = ""
    exposed_ports: tuple[int, ...] = field(default=())

    def as_json(self) -> dict:
        config = {"Env": list(self.env)}
        if self.entrypoint:
            config["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            config["Cmd"] = list(self.cmd)
        if self.workdir:
            config["WorkingDir"] = self.workdir
        if self.user:
            config["User"] = self.user
        if self.exposed_ports:
            config["ExposedPorts"] = {f"{port}/tcp": {} for port in self.exposed_ports}
        return config


def canonical_json(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def descriptor(media_type: str, blob: bytes) -> dict:
    return {"mediaType": media_type, "digest": sha256_digest(blob), "size": len(blob)}


def write_layout(output: Path, layers: list[Layer], process: ProcessConfig, ref: str = "latest",
                 architecture: str = "amd64") -> str:
    """Write the layout at output (replacing it); return the manifest digest."""
    output = Path(output)
    config = canonical_json({
        "architecture": architecture,
        "os": "linux",
        "config": process.as_json(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor(CONFIG_TYPE, config),
        "layers": [{"mediaType": LAYER_TYPE, "digest": layer.digest, "size": len(layer.blob)} for layer in layers],
    })
    manifest_descriptor = dict(descriptor(MANIFEST_TYPE, manifest),
                               platform={"architecture": architecture, "os": "linux"},
                               annotations={REF_NAME: ref})
    index = canonical_json({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [manifest_descriptor]})
    blobs = [config, manifest, *(layer.blob for layer in layers)]

    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        (work / "blobs" / "sha256").mkdir(parents=True)
        for blob in blobs:
            (work / "blobs" / "sha256" / sha256_digest(blob).split(":", 1)[1]).write_bytes(blob)
        (work / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        (work / "index.json").write_bytes(index)
        for path in (work, *work.rglob("*")):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        if output.exists():
            shutil.rmtree(output)
        os.rename(work, output)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest_descriptor["digest"]

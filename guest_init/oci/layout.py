"""Reading an OCI image layout: oci-layout, index.json -> manifest -> config + layers.

Every blob read here is checked against its descriptor (sha256 and size) before use;
layers are checked as they are unpacked (see store.py). Only index.json and oci-layout are
trusted by position, as the image-layout spec defines.
"""

import json
import os
from dataclasses import dataclass

from guest_init.oci import digest as digests

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
CONFIG_TYPES = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
)
# layer media type -> compression
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "none",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
}
MAX_JSON_BLOB = 4 << 20  # manifests and configs are small; refuse to load huge ones
MAX_INDEX_DEPTH = 2
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


class LayoutError(Exception):
    """The image layout is missing, malformed, or a blob fails verification."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    @classmethod
    def from_json(cls, data, where):
        if not isinstance(data, dict):
            raise LayoutError("%s: descriptor is not an object" % where)
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(media_type, str) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise LayoutError("%s: descriptor needs mediaType and a non-negative size" % where)
        try:
            digests.parse(digest)
        except digests.DigestError as exc:
            raise LayoutError("%s: %s" % (where, exc)) from None
        return cls(media_type, digest, size)


@dataclass(frozen=True)
class Image:
    """One resolved image: what the runtime needs to unpack and run it."""

    path: str
    manifest_digest: str
    config: dict  # the image config's "config" object (Entrypoint, Cmd, Env, WorkingDir, User)
    layers: tuple  # Descriptor per layer, bottom first
    diff_ids: tuple  # digest of each uncompressed layer, from the image config


def host_architecture():
    machine = os.uname().machine
    return _GOARCH.get(machine, machine)


class ImageLayout:
    """An OCI image layout directory."""

    def __init__(self, path):
        self.path = path

    def blob_path(self, digest):
        return os.path.join(self.path, "blobs", "sha256", digests.parse(digest))

    def resolve(self, architecture=None):
        """Read index.json and follow it to one manifest for linux/<architecture>."""
        self._check_layout_file()
        index = self._read_json(os.path.join(self.path, "index.json"), "index.json")
        descriptor = self._pick_manifest(index, "index.json", architecture or host_architecture(), 0)
        manifest = self.read_json_blob(descriptor, MANIFEST_TYPES)
        config_descriptor = Descriptor.from_json(manifest.get("config"), "manifest config")
        config = self.read_json_blob(config_descriptor, CONFIG_TYPES)
        layer_list = manifest.get("layers")
        if not isinstance(layer_list, list):
            raise LayoutError("manifest %s: layers is not a list" % descriptor.digest)
        layers = tuple(Descriptor.from_json(item, "manifest layer %d" % n) for n, item in enumerate(layer_list))
        for layer in layers:
            if layer.media_type not in LAYER_TYPES:
                raise LayoutError("layer %s: unsupported media type %s" % (layer.digest, layer.media_type))
        diff_ids = (config.get("rootfs") or {}).get("diff_ids")
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
            raise LayoutError("image config: rootfs.diff_ids must list one digest per layer")
        for diff_id in diff_ids:
            try:
                digests.parse(diff_id)
            except digests.DigestError as exc:
                raise LayoutError("image config diff_ids: %s" % exc) from None
        process = config.get("config") or {}
        if not isinstance(process, dict):
            raise LayoutError("image config: config is not an object")
        return Image(self.path, descriptor.digest, process, layers, tuple(diff_ids))

    def read_json_blob(self, descriptor, media_types):
        if descriptor.media_type not in media_types:
            raise LayoutError("blob %s: media type %s, expected one of %s"
                              % (descriptor.digest, descriptor.media_type, ", ".join(media_types)))
        if descriptor.size > MAX_JSON_BLOB:
            raise LayoutError("blob %s: %d bytes is too large for a manifest or config" % (descriptor.digest, descriptor.size))
        path = self.blob_path(descriptor.digest)
        try:
            with open(path, "rb") as blob:
                reader = digests.VerifyingReader(blob, descriptor.digest, descriptor.size)
                data = reader.read(MAX_JSON_BLOB + 1)
                reader.check()
        except OSError as exc:
            raise LayoutError("blob %s: %s" % (descriptor.digest, exc.strerror or exc)) from None
        except digests.DigestError as exc:
            raise LayoutError("digest mismatch: %s" % exc) from None
        return self._parse_json(data, "blob %s" % descriptor.digest)

    def _check_layout_file(self):
        marker = self._read_json(os.path.join(self.path, "oci-layout"), "oci-layout")
        if marker.get("imageLayoutVersion") != "1.0.0":
            raise LayoutError("%s: oci-layout imageLayoutVersion is not 1.0.0" % self.path)

    def _pick_manifest(self, index, where, architecture, depth):
        manifests = index.get("manifests")
        if not isinstance(manifests, list) or not manifests:
            raise LayoutError("%s: no manifests" % where)
        candidates = [Descriptor.from_json(item, "%s manifests[%d]" % (where, n)) for n, item in enumerate(manifests)]
        if len(candidates) > 1:
            wanted = [candidates[n] for n, item in enumerate(manifests)
                      if (item.get("platform") or {}).get("os") == "linux"
                      and (item.get("platform") or {}).get("architecture") == architecture]
            if len(wanted) != 1:
                raise LayoutError("%s: %d manifests, %d for linux/%s: cannot choose"
                                  % (where, len(candidates), len(wanted), architecture))
            candidates = wanted
        chosen = candidates[0]
        if chosen.media_type in INDEX_TYPES:
            if depth >= MAX_INDEX_DEPTH:
                raise LayoutError("%s: image indexes nested too deeply" % where)
            nested = self.read_json_blob(chosen, INDEX_TYPES)
            return self._pick_manifest(nested, "index %s" % chosen.digest, architecture, depth + 1)
        if chosen.media_type not in MANIFEST_TYPES:
            raise LayoutError("%s: unsupported manifest media type %s" % (where, chosen.media_type))
        return chosen

    def _read_json(self, path, where):
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_JSON_BLOB + 1)
        except OSError as exc:
            raise LayoutError("%s: %s" % (path, exc.strerror or exc)) from None
        return self._parse_json(data, where)

    @staticmethod
    def _parse_json(data, where):
        if len(data) > MAX_JSON_BLOB:
            raise LayoutError("%s: larger than %d bytes" % (where, MAX_JSON_BLOB))
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise LayoutError("%s: not JSON (%s)" % (where, exc)) from None
        if not isinstance(value, dict):
            raise LayoutError("%s: not a JSON object" % where)
        return value

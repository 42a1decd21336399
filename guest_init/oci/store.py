"""Unpacked root filesystems, one per manifest digest, shared read-only by all replicas.

`<state-dir>/rootfs/<hex of the manifest digest>/` is complete when it exists: layers are
unpacked into a `.partial-*` sibling and renamed into place, and a half-done directory
from a crash is discarded. The hex name (no `sha256:`) keeps colons out of overlay mount
options, where they separate lower directories.

Each layer blob is hashed as it is read (compressed digest from the manifest) and its
uncompressed stream too (diff_id from the image config); any mismatch discards the rootfs.
"""

import gzip
import os
import shutil
import tarfile

from guest_init.oci import digest as digests
from guest_init.oci.layout import LAYER_TYPES, LayoutError
from guest_init.oci.unpack import unpack_layer


class RootfsStore:
    def __init__(self, state_dir):
        self.directory = os.path.join(state_dir, "rootfs")

    def path_for(self, image):
        return os.path.join(self.directory, digests.parse(image.manifest_digest))

    def ensure(self, layout, image):
        """Return the unpacked rootfs of `image` (from `layout`), unpacking it the first time."""
        final = self.path_for(image)
        if os.path.isdir(final):
            return final
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        partial = os.path.join(self.directory, ".partial-" + os.path.basename(final))
        if os.path.lexists(partial):
            shutil.rmtree(partial)
        os.mkdir(partial, 0o755)
        try:
            for layer, diff_id in zip(image.layers, image.diff_ids):
                self._apply(layout.blob_path(layer.digest), layer, diff_id, partial)
            os.rename(partial, final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return final

    @staticmethod
    def _apply(blob_path, layer, diff_id, rootfs):
        compression = LAYER_TYPES[layer.media_type]
        if compression not in ("none", "gzip"):
            raise LayoutError("layer %s: %s compression is not supported in the guest" % (layer.digest, compression))
        try:
            with open(blob_path, "rb") as blob:
                compressed = digests.VerifyingReader(blob, layer.digest, layer.size)
                stream = gzip.GzipFile(fileobj=compressed, mode="rb") if compression == "gzip" else compressed
                tar_stream = digests.VerifyingReader(stream, diff_id)
                unpack_layer(tar_stream, rootfs)
                tar_stream.check()
                compressed.check()
        except digests.DigestError as exc:
            raise LayoutError("digest mismatch: %s" % exc) from None
        except tarfile.TarError as exc:
            raise LayoutError("layer %s: bad tar (%s)" % (layer.digest, exc)) from None
        except (OSError, EOFError) as exc:
            if isinstance(exc, FileNotFoundError) and exc.filename == blob_path:
                raise LayoutError("layer %s: blob missing" % layer.digest) from None
            raise LayoutError("layer %s: %s" % (layer.digest, exc)) from None

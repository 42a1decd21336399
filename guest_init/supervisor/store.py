"""Where desired state survives guest_init: spec.json in the state dir, and the config drive.

spec.json holds the last applied apply (secrets included), written atomically with mode 0600.
The config drive is the NoCloud `cidata` volume (ISO 9660, see
plugins/module_utils/nocloud_seed.py) whose goship.json carries {project, node, generation,
apps}; it is read straight from the block device (no mount, no isofs module needed).
"""

import json
import os

from guest_init import log

SPEC_FILE = "spec.json"
CONFIG_NAME = "goship.json"
ISO_CONFIG_NAME = b"GOSHIP.JSO;1"
VOLUME_LABEL = "cidata"
SECTOR = 2048
MAX_CONFIG_BYTES = 16 * 1024 * 1024


class SpecStore:
    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, SPEC_FILE)

    def save(self, desired):
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            data = desired.document().encode("utf-8")
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.path)
        directory = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def load(self):
        """The persisted DesiredState, or None (missing or unreadable: logged)."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                document = json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.info("ignoring %s: %s" % (self.path, exc))
            return None
        return parse_document(document, self.path)


def parse_document(document, where):
    from guest_init.supervisor import spec as specs
    if not isinstance(document, dict):
        log.info("ignoring %s: not a JSON object" % where)
        return None
    try:
        return specs.parse_apply(document.get("generation"), document.get("apps", []))
    except specs.SpecError as exc:
        log.info("ignoring %s: %s" % (where, exc))
        return None


def read_config(path):
    """goship.json from path: an ISO 9660 image or block device, or a plain JSON file."""
    with open(path, "rb") as source:
        head = source.read(1)
        if head == b"{":
            data = head + source.read(MAX_CONFIG_BYTES)
        else:
            data = iso_file(source, ISO_CONFIG_NAME)
            if data is None:
                return None
    try:
        return parse_document(json.loads(data), path)
    except ValueError as exc:
        log.info("ignoring %s: %s" % (path, exc))
        return None


def iso_volume_label(source):
    source.seek(16 * SECTOR)
    descriptor = source.read(SECTOR)
    if descriptor[1:6] != b"CD001" or descriptor[0] != 1:
        return None
    return descriptor[40:72].decode("ascii", "replace").strip()


def iso_file(source, name):
    """Contents of a file in the root directory of an ISO 9660 image, by its ISO name."""
    if iso_volume_label(source) is None:
        return None
    source.seek(16 * SECTOR)
    root = source.read(SECTOR)[156:190]
    extent, size = int.from_bytes(root[2:6], "little"), int.from_bytes(root[10:14], "little")
    source.seek(extent * SECTOR)
    directory = source.read(size)
    offset = 0
    while offset < len(directory):
        length = directory[offset]
        if length == 0:  # records never cross a sector: skip to the next one
            offset = (offset // SECTOR + 1) * SECTOR
            continue
        record = directory[offset:offset + length]
        name_length = record[32]
        if record[33:33 + name_length].upper() == name and not record[25] & 2:
            file_extent, file_size = int.from_bytes(record[2:6], "little"), int.from_bytes(record[10:14], "little")
            if file_size > MAX_CONFIG_BYTES:
                return None
            source.seek(file_extent * SECTOR)
            return source.read(file_size)
        offset += length
    return None


def find_config_drive(sys_block="/sys/class/block"):
    """/dev/<name> of a block device holding an ISO 9660 volume labelled cidata, or None."""
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        return None
    for name in names:
        if name.startswith(("loop", "ram")):
            continue
        device = "/dev/" + name
        try:
            with open(device, "rb") as source:
                if iso_volume_label(source) == VOLUME_LABEL:
                    return device
        except OSError:
            continue
    return None


def initial_state(store, config_path):
    """What to apply at start: the config drive's spec when newer than the persisted one."""
    persisted = store.load() if store is not None else None
    config = None
    if config_path:
        try:
            config = read_config(config_path)
        except OSError as exc:
            log.info("reading the config drive %s failed: %s" % (config_path, exc))
    if config is not None and (persisted is None or config.generation > persisted.generation):
        log.info("initial spec: generation %d from %s" % (config.generation, config_path))
        return config, True
    if persisted is not None:
        log.info("initial spec: generation %d from %s" % (persisted.generation, store.path))
    return persisted, False

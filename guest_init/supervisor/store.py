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


def read_config_document(path):
    """goship.json from path (an ISO 9660 image or block device, or a plain JSON file) as
    parsed JSON, or None when there is none or it is not JSON (logged)."""
    with open(path, "rb") as source:
        head = source.read(1)
        if head == b"{":
            data = head + source.read(MAX_CONFIG_BYTES)
        else:
            data = iso_file(source, ISO_CONFIG_NAME)
            if data is None:
                return None
    try:
        return json.loads(data)
    except ValueError as exc:
        log.info("ignoring %s: %s" % (path, exc))
        return None


def read_config(path):
    """The DesiredState of goship.json at path, or None."""
    document = read_config_document(path)
    return None if document is None else parse_document(document, path)


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


def load_config_document(config_path):
    """read_config_document, with a read error logged as no document."""
    if not config_path:
        return None
    try:
        return read_config_document(config_path)
    except OSError as exc:
        log.info("reading the config drive %s failed: %s" % (config_path, exc))
        return None


def initial_state(store, config_path, document=None, measured=False):
    """What to apply at start: the config drive's spec when newer than the persisted one.

    ``document``: goship.json already read (None: read it from config_path). ``measured``: the
    document's digest was verified against the platform's, so it is the only boot spec (a
    persisted spec, which the host could have written to the state disk, is not restored).
    """
    if document is None:
        document = load_config_document(config_path)
    config = parse_document(document, config_path) if document is not None else None
    if measured:
        if config is not None:
            log.info("initial spec: generation %d from %s (measured)" % (config.generation, config_path))
        return config, config is not None
    persisted = store.load() if store is not None else None
    if config is not None and (persisted is None or config.generation > persisted.generation):
        log.info("initial spec: generation %d from %s" % (config.generation, config_path))
        return config, True
    if persisted is not None:
        log.info("initial spec: generation %d from %s" % (persisted.generation, store.path))
    return persisted, False

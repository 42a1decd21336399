# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""NoCloud ``cidata`` seed: what goes in it, and reading/writing it as an ISO 9660 image.

The seed serves two kinds of guest:

* the GoShip image, whose PID 1 is guest_init: it reads ``goship.json`` (project identity,
  generation, initial app set) from the volume labelled ``cidata``;
* a stock cloud image whose PID 1 is systemd: cloud-init reads ``meta-data``, ``user-data``
  and ``network-config``; the user-data then installs guest_init as a service.

All documents are written as canonical JSON (sorted keys), which is also valid YAML, so equal
input always gives byte-equal files and an unchanged seed is never rewritten.

``goship.json`` is also the *measured configuration* of a confidential VM: its digest over
"GoShip canonical JSON v1" (``measured_canonical_json``; guest_init/measured.py computes the
same bytes from the file it reads) goes into SEV-SNP host data (SHA-256) or TDX mrConfigId
(SHA-384), see docs/confidential.md.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tempfile

try:
    import pycdlib
    HAS_PYCDLIB = True
    PYCDLIB_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the node
    HAS_PYCDLIB = False
    PYCDLIB_IMPORT_ERROR = exc

VOLUME_LABEL = 'cidata'
GOSHIP_CONFIG_NAME = 'goship.json'
GUEST_INIT_SERVICE = 'goship-guest-init.service'
GUEST_INIT_ARCHIVE_PATH = '/usr/local/lib/goship/guest_init.pyz'
SECRET_MASK = '********'

# ISO 9660 level-1 names for the Joliet/Rock Ridge names cloud-init reads.
_ISO_NAMES = {
    'meta-data': '/METADATA.;1',
    'user-data': '/USERDATA.;1',
    'network-config': '/NETCFG.;1',
    GOSHIP_CONFIG_NAME: '/GOSHIP.JSO;1',
}


def _canonical_json(data):
    return (json.dumps(data, indent=2, sort_keys=True) + '\n').encode('utf-8')


MEASUREMENT_FORM = 'goship-canonical-json-v1'
MEASUREMENT_ALGORITHMS = ('sha256', 'sha384')


def measured_canonical_json(document):
    """The bytes hashed for the measured configuration: sorted keys, no whitespace, ASCII only
    (non-ASCII as \\uXXXX), NaN refused. Same definition as guest_init/measured.py."""
    return json.dumps(document, sort_keys=True, separators=(',', ':'), ensure_ascii=True, allow_nan=False).encode('ascii')


def measured_digests(goship):
    """``{form, sha256, sha384}`` (hex) of goship.json as the guest will read it: the document
    goes through the JSON file first, so what is hashed is exactly what guest_init parses."""
    as_read = json.loads(_canonical_json(goship).decode('utf-8'))
    data = measured_canonical_json(as_read)
    result = {'form': MEASUREMENT_FORM}
    for algorithm in MEASUREMENT_ALGORITHMS:
        result[algorithm] = hashlib.new(algorithm, data).hexdigest()
    return result


def guest_init_service_unit():
    """systemd unit that runs guest_init as a service on a stock cloud image."""
    return '\n'.join([
        '[Unit]',
        'Description=GoShip guest_init (app supervisor)',
        'After=local-fs.target',
        '',
        '[Service]',
        'ExecStart=/usr/bin/python3 -I %s --service' % GUEST_INIT_ARCHIVE_PATH,
        'Restart=always',
        'RestartSec=1',
        'KillMode=mixed',
        'Delegate=yes',
        '',
        '[Install]',
        'WantedBy=multi-user.target',
        '',
    ])


def build_user_data(user_data, guest_init_archive):
    """cloud-config user-data: the caller's document plus, with an archive, the guest_init service."""
    doc = dict(user_data or {})
    if guest_init_archive is not None:
        write_files = list(doc.get('write_files') or [])
        write_files.append({
            'path': GUEST_INIT_ARCHIVE_PATH,
            'encoding': 'b64',
            'content': base64.b64encode(guest_init_archive).decode('ascii'),
            'permissions': '0644',
        })
        write_files.append({
            'path': '/etc/systemd/system/' + GUEST_INIT_SERVICE,
            'content': guest_init_service_unit(),
            'permissions': '0644',
        })
        doc['write_files'] = write_files
        runcmd = list(doc.get('runcmd') or [])
        runcmd.append(['systemctl', 'daemon-reload'])
        runcmd.append(['systemctl', 'enable', '--now', GUEST_INIT_SERVICE])
        doc['runcmd'] = runcmd
    return b'#cloud-config\n' + _canonical_json(doc)


def build_seed_files(instance_id, hostname, user_data=None, network_config=None, goship=None,
                     guest_init_archive=None):
    """Return ``{file name: bytes}`` for the seed volume."""
    files = {
        'meta-data': _canonical_json({'instance-id': instance_id, 'local-hostname': hostname}),
        'user-data': build_user_data(user_data, guest_init_archive),
    }
    if network_config is not None:
        files['network-config'] = _canonical_json(network_config)
    if goship is not None:
        files[GOSHIP_CONFIG_NAME] = _canonical_json(goship)
    return files


def secret_values(data):
    """Every value marked secret in an app set: ``{'value': ..., 'secret': true}`` anywhere in ``data``."""
    found = set()
    if isinstance(data, dict):
        if data.get('secret') is True and isinstance(data.get('value'), str):
            found.add(data['value'])
        for value in data.values():
            found |= secret_values(value)
    elif isinstance(data, list):
        for value in data:
            found |= secret_values(value)
    return found


def mask_secrets(text, secrets):
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, SECRET_MASK)
    return text


def describe_files(files, secrets=frozenset()):
    """A readable rendering of the seed for ``--diff`` (binary payloads summarised, secrets masked)."""
    parts = []
    for name in sorted(files):
        content = files[name]
        text = content.decode('utf-8', errors='replace')
        if len(text) > 4096:
            text = '<%d bytes, sha256 %s>\n' % (len(content), hashlib.sha256(content).hexdigest())
        parts.append('==> %s <==\n%s' % (name, mask_secrets(text, secrets)))
    return ''.join(parts)


def read_iso_files(path):
    """Files at the root of an existing seed ISO, by Joliet name; None when it is not a readable seed."""
    iso = pycdlib.PyCdlib()
    try:
        iso.open(path)
    except (pycdlib.pycdlibexception.PyCdlibException, OSError):
        return None
    try:
        files = {}
        for child in iso.list_children(joliet_path='/'):
            if child.is_dot() or child.is_dotdot() or child.is_dir():
                continue
            name = child.file_identifier().decode('utf-16_be')
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, joliet_path='/' + name)
            files[name] = out.getvalue()
        return files
    except pycdlib.pycdlibexception.PyCdlibException:
        return None
    finally:
        iso.close()


def write_iso(path, files, mode=0o600):
    """Write the seed atomically (temp file + rename), so a reader never sees half an ISO."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge='1.09', vol_ident=VOLUME_LABEL)
    for name in sorted(files):
        content = files[name]
        iso.add_fp(io.BytesIO(content), len(content), _ISO_NAMES[name], rr_name=name, joliet_path='/' + name)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix='.seed-', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            os.fchmod(handle.fileno(), mode)
            iso.write_fp(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise
    finally:
        iso.close()

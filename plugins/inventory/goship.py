# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
name: goship
short_description: GoShip nodes and their project VMs, from the desired state
version_added: 0.1.0
description:
  - Reads GoShip's desired-state document (C(apiVersion=goship/v1), C(kind=DesiredState)) either from the
    control service (C(GET <url>/api/v1/desired-state)) or from a YAML state file, validates it, and adds
    one host per node.
  - Every node joins the group C(goship_nodes) and a group C(goship_project_<project>) (with C(-) written
    as C(_)) per project placed on it.
  - "Host variables: the node's connection (C(ansible_connection), C(ansible_host), C(ansible_port),
    C(ansible_user)), C(goship_node), C(goship_state_root), C(goship_labels), C(goship_project_vms) (one
    C({project, domain, generation, vm, apps}) per project placed on the node, sorted by project) and the
    node's own C(vars)."
  - Values from the document are never templates (ansible-core 2.19 trusts no string an inventory
    plugin did not mark as trusted), so Jinja2 in them (an app's environment, say) is never rendered;
    C(ansible-inventory --list) shows such strings as unsafe.
  - Uses a YAML configuration file whose name ends with C(.goship.yml) or C(.goship.yaml).
author:
  - GoShip developers (@goship)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks this file as a configuration of this plugin.
    required: true
    type: str
    choices: [goship.core.goship]
  url:
    description:
      - Base URL of the GoShip control service, for example C(https://goship.example.com:8443).
      - The plugin reads C(<url>/api/v1/desired-state). Give either O(url) or O(state_file), not both.
    type: str
    env:
      - name: GOSHIP_URL
  token:
    description:
      - "API token, sent as C(Authorization: Bearer <token>). Required with O(url)."
      - Prefer the environment variable over writing the token into the configuration file.
    type: str
    env:
      - name: GOSHIP_TOKEN
  state_file:
    description:
      - Path of a YAML desired-state document, for stand-alone use without the control service.
      - A relative path is relative to the directory of this configuration file; C(~) is expanded.
        The file may be encrypted with ansible-vault.
    type: str
  validate_certs:
    description: Verify the control service's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the control service.
    type: int
    default: 30
'''

EXAMPLES = r'''
---
# stand-alone: nodes.goship.yml
plugin: goship.core.goship
state_file: desired-state.yml
keyed_groups:
  - key: goship_labels.zone
    prefix: zone

---
# from the control service; the token comes from the environment variable GOSHIP_TOKEN
plugin: goship.core.goship
url: https://goship.example.com:8443
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /var/cache/goship-inventory
cache_timeout: 60
'''

import os
from urllib.error import HTTPError, URLError

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.goship.core.plugins.plugin_utils import desired_state

CONFIG_SUFFIXES = ('.goship.yml', '.goship.yaml')
API_PATH = '/api/v1/desired-state'
NODES_GROUP = 'goship_nodes'
ERROR_BODY_CHARS = 200


def project_group(project):
    return 'goship_project_' + project.replace('-', '_')


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'goship.core.goship'

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(CONFIG_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        location = self._source_location(path)
        document = self._document(location, self.get_cache_key('%s|%s' % (path, location)), cache)
        self._populate(document)

    def _source_location(self, config_path):
        """The URL or the absolute state file path; exactly one of the two options may be set."""
        url = self.get_option('url')
        state_file = self.get_option('state_file')
        if url and state_file:
            raise AnsibleParserError('goship inventory: give either url (or env GOSHIP_URL) or state_file, not both')
        if url:
            if not url.startswith(('http://', 'https://')):
                raise AnsibleParserError('goship inventory: url must start with http:// or https://, got %r' % url)
            if not self.get_option('token'):
                raise AnsibleParserError('goship inventory: url needs a token (option token or env GOSHIP_TOKEN)')
            return url.rstrip('/') + API_PATH
        if state_file:
            return os.path.join(os.path.dirname(os.path.abspath(config_path)), os.path.expanduser(state_file))
        raise AnsibleParserError('goship inventory: set url (or env GOSHIP_URL) for the control service, or state_file')

    def _document(self, location, cache_key, cache):
        """The validated document, from the inventory cache when allowed and present."""
        cache_enabled = self.get_option('cache')
        document = None
        if cache_enabled and cache:
            document = self._cache.get(cache_key)
        if document is None:
            document = self._fetch(location)
            self._validate(document, location)
            if cache_enabled:
                self._cache[cache_key] = document
        else:
            self._validate(document, location + ' (cached)')
        return document

    def _fetch(self, location):
        """The document, parsed but not yet validated."""
        if location.startswith(('http://', 'https://')):
            text, load = self._get(location), desired_state.load_json
        else:
            text, load = self._read(location), desired_state.load_yaml
        try:
            return load(text)
        except desired_state.DesiredStateError as exc:
            raise AnsibleParserError('goship inventory: %s: %s' % (location, exc)) from exc

    def _read(self, state_file):
        """The state file's text, decrypted when it is vault-encrypted."""
        try:
            return self.loader.get_text_file_contents(state_file)
        except AnsibleError as exc:
            raise AnsibleParserError('goship inventory: cannot read state file %s: %s' % (state_file, exc)) from exc

    @staticmethod
    def _validate(document, location):
        try:
            desired_state.validate(document)
        except desired_state.DesiredStateError as exc:
            raise AnsibleParserError('goship inventory: %s: %s' % (location, exc)) from exc

    def _get(self, endpoint):
        """The body of GET endpoint as text; the token is never forwarded on a redirect."""
        headers = {'Authorization': 'Bearer %s' % self.get_option('token'), 'Accept': 'application/json'}
        try:
            response = open_url(
                endpoint, method='GET', headers=headers, unredirected_headers=['Authorization'],
                validate_certs=self.get_option('validate_certs'), timeout=self.get_option('timeout'),
                use_netrc=False,
            )
            return response.read().decode('utf-8')
        except HTTPError as exc:
            raise AnsibleParserError('goship inventory: GET %s: %s' % (endpoint, _http_error_text(exc))) from exc
        except UnicodeDecodeError as exc:
            raise AnsibleParserError('goship inventory: GET %s: the answer is not UTF-8: %s' % (endpoint, exc)) from exc
        except (URLError, UrlsConnectionError, OSError) as exc:
            raise AnsibleParserError('goship inventory: GET %s failed: %s' % (endpoint, exc)) from exc

    def _populate(self, document):
        self.inventory.add_group(NODES_GROUP)
        for project in sorted(document.get('projects') or {}):
            self.inventory.add_group(project_group(project))
        project_vms = desired_state.project_vms_by_node(document)
        for name in sorted(document['nodes']):
            self._add_node(name, document['nodes'][name], project_vms[name])

    def _add_node(self, name, node, project_vms):
        host = self.inventory.add_host(name, group=NODES_GROUP)
        for project_vm in project_vms:
            self.inventory.add_child(project_group(project_vm['project']), host)
        hostvars = node_hostvars(name, node, project_vms)
        for key, value in hostvars.items():
            self.inventory.set_variable(host, key, value)
        strict = self.get_option('strict')
        self._set_composite_vars(self.get_option('compose'), hostvars, host, strict=strict)
        self._add_host_to_composed_groups(self.get_option('groups'), hostvars, host, strict=strict)
        self._add_host_to_keyed_groups(self.get_option('keyed_groups'), hostvars, host, strict=strict)


def node_hostvars(name, node, project_vms):
    """Host variables of one node: its own vars, its connection, then GoShip's variables."""
    hostvars = dict(node.get('vars') or {})
    for field, variable in desired_state.CONNECTION_VARS.items():
        if field in node:
            hostvars[variable] = node[field]
    hostvars.update(
        goship_node=name,
        goship_state_root=desired_state.node_state_root(node),
        goship_labels=dict(node.get('labels') or {}),
        goship_project_vms=project_vms,
    )
    return hostvars


def _http_error_text(exc):
    """Status, reason, a hint for auth failures, and the start of the server's message."""
    text = 'HTTP %s %s' % (exc.code, exc.reason)
    if exc.code in (401, 403):
        text += ' (check the token: option token or env GOSHIP_TOKEN)'
    try:
        body = exc.read().decode('utf-8', errors='replace').strip()
    except (OSError, AttributeError):
        body = ''
    if body:
        text += ': %s' % body[:ERROR_BODY_CHARS]
    return text

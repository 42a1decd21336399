# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The desired-state document (apiVersion goship/v1, kind DesiredState): load, validate, place.

Shared by the inventory plugin goship.core.goship and the control service; stdlib + PyYAML only.
Every problem names its field path (``projects.alpha.apps[1].replicas: ...``) so a hand-written
state file can be fixed from the message alone. The format is described in docs/inventory.md.
"""

from __future__ import annotations

import json
import keyword
import re

import yaml

API_VERSION = 'goship/v1'
KIND = 'DesiredState'
DEFAULT_STATE_ROOT = '/var/lib/goship'
# A hand-written state file may use YAML anchors, but PyYAML shares aliased values without
# limit: nine levels of nine aliases ("billion laughs") load in milliseconds and expand to 9**9
# values once Ansible copies or serializes the host vars. Real files hold thousands of values.
MAX_EXPANDED_VALUES = 1000000

DNS_LABEL = re.compile(r'[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?')
ENV_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
DNS_LABEL_RULE = 'must be a DNS label (lowercase letters, digits and "-", 1-63 characters, no "-" at either end)'

TOP_LEVEL_FIELDS = ('apiVersion', 'kind', 'nodes', 'projects')
NODE_FIELDS = ('connection', 'host', 'port', 'user', 'state_root', 'labels', 'vars')
PROJECT_FIELDS = ('generation', 'nodes', 'vm', 'apps')
# Node fields that become Ansible connection variables; vars may not set these a second time.
CONNECTION_VARS = {'connection': 'ansible_connection', 'host': 'ansible_host', 'port': 'ansible_port', 'user': 'ansible_user'}
# Host vars the plugin sets itself; other goship_* vars (role settings) may be given per node.
RESERVED_VARS = ('goship_node', 'goship_state_root', 'goship_labels', 'goship_project_vms')


class DesiredStateError(ValueError):
    """A desired-state document that cannot be used; ``problems`` lists ``"<path>: <message>"``."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__('invalid desired state: ' + '; '.join(self.problems))


def load_yaml(text):
    """The document in a YAML (or JSON) text, not yet validated."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DesiredStateError(['<document>: not valid YAML: %s' % exc]) from exc
    except RecursionError:
        raise DesiredStateError(['<document>: nested too deeply']) from None
    _check_expanded_size(document)
    return document


def load_json(text):
    """The document in a JSON text (the control service's answer), not yet validated."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DesiredStateError(['<document>: not valid JSON: %s' % exc]) from exc
    except RecursionError:
        raise DesiredStateError(['<document>: nested too deeply']) from None


def _check_expanded_size(document):
    """Refuse a document that expands past MAX_EXPANDED_VALUES values (aliases counted each
    time they are used; a self-referencing alias never ends and is refused the same way)."""
    pending = [document]
    seen = 0
    while pending:
        seen += 1
        if seen > MAX_EXPANDED_VALUES:
            raise DesiredStateError(['<document>: expands to more than %d values (YAML aliases?)' % MAX_EXPANDED_VALUES])
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def domain_name(node, project):
    """libvirt domain name of a project VM (ARCHITECTURE.md, fixed names)."""
    return 'goship-%s-%s' % (node, project)


def validate(document):
    """Raise DesiredStateError listing every problem in ``document``; return it unchanged when valid."""
    problems = []
    if not isinstance(document, dict):
        raise DesiredStateError(['<document>: must be a mapping, got %s' % _type_name(document)])
    if document.get('apiVersion') != API_VERSION:
        problems.append('apiVersion: must be %r, got %r' % (API_VERSION, document.get('apiVersion')))
    if document.get('kind') != KIND:
        problems.append('kind: must be %r, got %r' % (KIND, document.get('kind')))
    problems.extend(_unknown_fields(document, TOP_LEVEL_FIELDS, ''))

    nodes = document.get('nodes')
    if nodes is None:
        problems.append('nodes: required (a mapping of node name to node)')
        nodes = {}
    elif not isinstance(nodes, dict):
        problems.append('nodes: must be a mapping of node name to node, got %s' % _type_name(nodes))
        nodes = {}
    for name, node in nodes.items():
        problems.extend(_node_problems(name, node))

    projects = document.get('projects', {})
    if not isinstance(projects, dict):
        problems.append('projects: must be a mapping of project name to project, got %s' % _type_name(projects))
        projects = {}
    for name, project in projects.items():
        problems.extend(_project_problems(name, project, nodes))

    if problems:
        raise DesiredStateError(problems)
    return document


def project_vms_by_node(document):
    """For a valid document: node name -> its project VMs, sorted by project.

    Each VM is ``{project, domain, generation, vm, apps}``; ``vm`` and ``apps`` are the
    document's own objects, shared by every node of the project: read them, never change them
    (a copy per node made the inventory of 1,000 nodes x 10,000 projects 2.5 times slower).
    """
    placement = {name: [] for name in document['nodes']}
    projects = document.get('projects') or {}
    for project_name in sorted(projects):
        project = projects[project_name]
        for node in project['nodes']:
            placement[node].append({
                'project': project_name,
                'domain': domain_name(node, project_name),
                'generation': project['generation'],
                'vm': project.get('vm') or {},
                'apps': project.get('apps') or [],
            })
    return placement


def node_state_root(node):
    return node.get('state_root') or DEFAULT_STATE_ROOT


def _node_problems(name, node):
    path = 'nodes.%s' % name
    if not _is_dns_label(name):
        return ['%s: node name %s' % (path, DNS_LABEL_RULE)]
    if not isinstance(node, dict):
        return ['%s: must be a mapping, got %s' % (path, _type_name(node))]
    problems = list(_unknown_fields(node, NODE_FIELDS, path + '.'))
    for field in ('connection', 'host', 'user'):
        if field in node and not _is_nonempty_str(node[field]):
            problems.append('%s.%s: must be a non-empty string' % (path, field))
    if 'port' in node and not _is_int_in(node['port'], 1, 65535):
        problems.append('%s.port: must be an integer from 1 to 65535' % path)
    if 'state_root' in node and not (_is_nonempty_str(node['state_root']) and node['state_root'].startswith('/')):
        problems.append('%s.state_root: must be an absolute path' % path)
    problems.extend(_labels_problems(node.get('labels', {}), path + '.labels'))
    problems.extend(_vars_problems(node, path))
    return problems


def _labels_problems(labels, path):
    if not isinstance(labels, dict):
        return ['%s: must be a mapping, got %s' % (path, _type_name(labels))]
    problems = []
    for key, value in labels.items():
        if not _is_nonempty_str(key):
            problems.append('%s: label names must be non-empty strings, got %r' % (path, key))
        elif not isinstance(value, (str, int, float, bool)):
            problems.append('%s.%s: must be a string, number or boolean' % (path, key))
    return problems


def _vars_problems(node, path):
    variables = node.get('vars', {})
    if not isinstance(variables, dict):
        return ['%s.vars: must be a mapping, got %s' % (path, _type_name(variables))]
    problems = []
    given_connection_vars = {CONNECTION_VARS[field]: field for field in CONNECTION_VARS if field in node}
    for key in variables:
        if not (isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)):
            problems.append('%s.vars: %r is not a valid variable name' % (path, key))
        elif key in RESERVED_VARS:
            problems.append('%s.vars.%s: is set by GoShip from the document' % (path, key))
        elif key in given_connection_vars:
            problems.append('%s.vars.%s: conflicts with %s.%s' % (path, key, path, given_connection_vars[key]))
    return problems


def _project_problems(name, project, nodes):
    path = 'projects.%s' % name
    if not _is_dns_label(name):
        return ['%s: project name %s' % (path, DNS_LABEL_RULE)]
    if not isinstance(project, dict):
        return ['%s: must be a mapping, got %s' % (path, _type_name(project))]
    problems = list(_unknown_fields(project, PROJECT_FIELDS, path + '.'))
    if 'generation' not in project:
        problems.append('%s.generation: required' % path)
    elif not _is_int_in(project['generation'], 0):
        problems.append('%s.generation: must be an integer >= 0' % path)
    problems.extend(_placement_problems(project.get('nodes'), nodes, path + '.nodes'))
    problems.extend(_vm_problems(project.get('vm', {}), path + '.vm'))
    problems.extend(_apps_problems(project.get('apps', []), path + '.apps'))
    return problems


def _placement_problems(placement, nodes, path):
    if placement is None:
        return ['%s: required (a list of node names)' % path]
    if not isinstance(placement, list):
        return ['%s: must be a list of node names, got %s' % (path, _type_name(placement))]
    problems = []
    seen = set()
    for index, node in enumerate(placement):
        item = '%s[%d]' % (path, index)
        if not isinstance(node, str):
            problems.append('%s: must be a node name, got %s' % (item, _type_name(node)))
        elif node not in nodes:
            problems.append('%s: unknown node %r (not in nodes)' % (item, node))
        elif node in seen:
            problems.append('%s: node %r is listed twice' % (item, node))
        else:
            seen.add(node)
    return problems


def _vm_problems(vm, path):
    if not isinstance(vm, dict):
        return ['%s: must be a mapping, got %s' % (path, _type_name(vm))]
    return ['%s.%s: must be an integer >= 1' % (path, field)
            for field in ('vcpus', 'memory_mib') if field in vm and not _is_int_in(vm[field], 1)]


def _apps_problems(apps, path):
    if not isinstance(apps, list):
        return ['%s: must be a list of apps, got %s' % (path, _type_name(apps))]
    problems = []
    first_index_of_name = {}
    for index, app in enumerate(apps):
        item = '%s[%d]' % (path, index)
        if not isinstance(app, dict):
            problems.append('%s: must be a mapping, got %s' % (item, _type_name(app)))
            continue
        name = app.get('name')
        if not _is_dns_label(name):
            problems.append('%s.name: app name %s' % (item, DNS_LABEL_RULE))
        elif name in first_index_of_name:
            problems.append('%s.name: duplicate app name %r (also %s[%d])' % (item, name, path, first_index_of_name[name]))
        else:
            first_index_of_name[name] = index
        problems.extend(_app_field_problems(app, item))
    return problems


def _app_field_problems(app, path):
    """Fields every consumer relies on; other app fields pass through for the node side to check."""
    problems = []
    if not _is_int_in(app.get('replicas'), 0):
        problems.append('%s.replicas: must be an integer >= 0' % path)
    if not _is_nonempty_str(app.get('image')):
        problems.append('%s.image: must be a non-empty string' % path)
    ports = app.get('ports', [])
    if not isinstance(ports, list):
        problems.append('%s.ports: must be a list of port numbers' % path)
    else:
        problems.extend('%s.ports[%d]: must be an integer from 1 to 65535' % (path, index)
                        for index, port in enumerate(ports) if not _is_int_in(port, 1, 65535))
    problems.extend(_env_problems(app.get('env', {}), path + '.env'))
    return problems


def _env_problems(env, path):
    if not isinstance(env, dict):
        return ['%s: must be a mapping, got %s' % (path, _type_name(env))]
    problems = []
    for key, value in env.items():
        if not (isinstance(key, str) and ENV_NAME.fullmatch(key)):
            problems.append('%s: %r is not a valid environment variable name' % (path, key))
        elif not (isinstance(value, str) or _is_secret_value(value)):
            problems.append('%s.%s: must be a string (quote numbers) or {value: <string>, secret: <bool>}' % (path, key))
    return problems


def _is_secret_value(value):
    return (isinstance(value, dict) and set(value) <= {'value', 'secret'}
            and isinstance(value.get('value'), str) and isinstance(value.get('secret', False), bool))


def _unknown_fields(mapping, known, prefix):
    return ['%s%s: unknown field (known: %s)' % (prefix, key, ', '.join(known)) for key in mapping if key not in known]


def _is_dns_label(value):
    return isinstance(value, str) and DNS_LABEL.fullmatch(value) is not None


def _is_nonempty_str(value):
    return isinstance(value, str) and value != ''


def _is_int_in(value, low, high=None):
    """An int (bool excluded: YAML's true is not a count) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return value >= low and (high is None or value <= high)


def _type_name(value):
    return 'null' if value is None else type(value).__name__

"""Runtime registry: `get_runtime(name)`; runtimes are imported on first use."""

import importlib

_MODULES = {
    "process": ("guest_init.runtimes.process", "ProcessRuntime"),
    "crun": ("guest_init.runtimes.crun", "CrunRuntime"),
}

NAMES = tuple(_MODULES)


def get_runtime(name, **options):
    """Return a new runtime by name; `options` (cgroup_root, state_dir, images_dir) go to
    its constructor (see `base.Runtime`).

    Raises KeyError for an unknown name.
    """
    module_name, class_name = _MODULES[name]
    module = importlib.import_module(module_name)
    return getattr(module, class_name)(**options)

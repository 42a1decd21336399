"""The runtime interface: how the supervisor starts, signals and cleans up one replica.

A runtime turns a `Launch` (everything the supervisor decided about one replica) into a
process the supervisor can watch through the reaper. The supervisor never knows more than
this interface, so a podman or docker runtime can be added without touching it.
"""

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """cgroup v2 limits of one replica; None means unlimited."""

    cpu_millis: int | None
    memory_bytes: int | None
    pids: int | None


@dataclass(frozen=True)
class Launch:
    """One replica to start. `env` holds secret values: never log this object."""

    app: str
    index: int
    container_id: str  # "<app>-<index>-<short spec hash>"
    image: str  # as given in the app spec
    argv: tuple[str, ...]  # command + args (crun: resolved against the image config)
    env: dict[str, str]
    workdir: str | None
    user: str | None  # "uid[:gid]"
    limits: Limits
    cgroup: str  # relative cgroup v2 path, e.g. "goship/web/0" (under the cgroup root)
    stdout_fd: int  # write ends of pipes owned by the supervisor
    stderr_fd: int

    def __repr__(self):
        return f"Launch({self.container_id!r}, image={self.image!r})"


class Runtime(abc.ABC):
    """Starts replicas. Implementations must not call waitpid: the reaper owns exits.

    Constructed by `guest_init.runtimes.get_runtime(name, cgroup_root=, state_dir=,
    images_dir=)`. `cgroup_root` is the cgroup v2 mount (or a delegated sub-tree) or None
    when cgroups are unavailable (host tests; limits then cannot be applied).
    Division of work on cgroups: the supervisor enables the cpu, memory and pids controllers
    down to `<root>/goship/` before starting anything; the runtime owns the replica's leaf
    cgroup (`<root>/<launch.cgroup>`, intermediate `goship/<app>/` included): it creates it
    with the limits in `start` and removes it in `cleanup`. The supervisor reads
    `cgroup_dir()`'s cpu.stat, memory.current and memory.events after the replica exits and
    before it calls `cleanup`.
    """

    name: str = ""

    def __init__(self, *, cgroup_root: str | None, state_dir: str, images_dir: str):
        self.cgroup_root = cgroup_root
        self.state_dir = state_dir
        self.images_dir = images_dir

    def resolve_argv(self, image: str, command, args) -> tuple[str, ...]:
        """The argv a replica runs (Launch.argv), from the app spec's command and args (each
        a tuple or None). This default takes them as given; a runtime whose images carry a
        config overrides it (OCI: command replaces Entrypoint, args replace Cmd). Raises
        OSError/ValueError when the image cannot be read; the supervisor records the message.
        """
        return tuple(command or ()) + tuple(args or ())

    @abc.abstractmethod
    def start(self, launch: Launch) -> int:
        """Start the replica; return the pid whose exit is the replica's exit."""

    @abc.abstractmethod
    def signal(self, launch: Launch, pid: int, signum: int) -> None:
        """Deliver `signum` to every process of the replica."""

    @abc.abstractmethod
    def cleanup(self, launch: Launch) -> None:
        """Remove what `start` left behind once the replica has exited (idempotent)."""

    @abc.abstractmethod
    def exec_argv(self, launch: Launch, argv: list[str]) -> list[str]:
        """Return an argv that runs `argv` inside the replica's context (exec health check)."""

    @abc.abstractmethod
    def cgroup_dir(self, launch: Launch) -> str:
        """Return the absolute path of the replica's cgroup directory."""

"""Has a project reached its desired state? Judged from its view (``ControlService.get_project``)."""

from __future__ import annotations

from dataclasses import dataclass

UP_STATES = ("running", "ready")


@dataclass(frozen=True)
class ProjectProgress:
    project: str
    generation: int
    vms_desired: int
    vms_ready: int  # running, at the project's generation
    vms_leftover: int  # reported where the project is no longer placed
    replicas_desired: int
    replicas_up: int
    scheduled: bool
    message: str

    @property
    def done(self) -> bool:
        return (self.vms_ready == self.vms_desired and not self.vms_leftover
                and self.replicas_up == self.replicas_desired)

    def summary(self) -> str:
        text = "project %s generation %d: %d/%d VMs ready, %d/%d replicas up" % (
            self.project, self.generation, self.vms_ready, self.vms_desired, self.replicas_up, self.replicas_desired)
        if self.vms_leftover:
            text += ", %d VM(s) to remove" % self.vms_leftover
        if not self.scheduled:
            text += " (not fully schedulable: %s)" % self.message
        return text


def project_progress(view: dict) -> ProjectProgress:
    status = view["status"]
    generation = status["generation"]
    desired_vms = [vm for vm in status["vms"] if vm["desired"]]
    return ProjectProgress(
        project=view["metadata"]["name"], generation=generation, vms_desired=len(desired_vms),
        vms_ready=sum(1 for vm in desired_vms if vm["state"] == "running" and vm["observedGeneration"] == generation),
        vms_leftover=sum(1 for vm in status["vms"] if not vm["desired"] and vm["state"] != "pending"),
        replicas_desired=sum(app["desired"] for app in status["apps"]),
        replicas_up=sum(count for app in status["apps"] for state, count in app["states"].items() if state in UP_STATES),
        scheduled=status["scheduled"], message=status["message"])

"""The seam between the control service and the reconciler (ansible-runner running
playbooks/reconcile.yml against the ``goship.core.goship`` inventory).

The control service never starts a VM. What it gives the reconciler:

- ``trigger.PendingNodes``: the API and CLI call ``request(nodes, reason)`` whenever the desired
  state of those nodes changed (apply, scale, delete, drain, ...). A reconciler loop calls
  ``take(timeout_s)`` to get the nodes to run next, and runs periodically besides.
- ``goship_ctl.desired_state.compute``: the document the inventory plugin reads (also served at
  ``GET /api/v1/desired-state``).
- ``recorder.ActualStateRecorder``: what a run learned goes back into the store: host facts
  (``host_info``), unreachable nodes, each VM's and replica's state (``guest_status``), and the
  run itself (events and Prometheus metrics).

The runner part (private data dir per run, artifacts, time limit, cancel, per-node backoff)
lives in this package too once written; it only needs these three pieces.
"""

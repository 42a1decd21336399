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

On top of them: ``runner.PlaybookRunner`` (one ansible-runner run: private data dir, artifacts,
time limit, cancel), ``events`` (runner events -> what a run learned, secrets masked),
``reconcile.Reconciler`` (reconcile / refresh / signal / logs for nodes of the store, node locks),
``loop.ReconcileLoop`` (``serve --reconcile``: on change and periodically, backoff) and
``settle`` (the CLI's foreground rounds). docs/control-service.md, *Reconciler*, has the whole story.
"""

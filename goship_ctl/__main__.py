"""``python -m goship_ctl`` runs the ``goship-ctl`` command line."""

from goship_ctl.cli import main

raise SystemExit(main())

"""Study files: the typed schema (the only place defaults live), loading with ``--set`` and sweeps, and error
text that points at the line."""

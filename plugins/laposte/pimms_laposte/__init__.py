"""pimms plugin package (hook implementations are added by the core team)."""

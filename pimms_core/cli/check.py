"""Commands of the `pimms` CLI (module reserved: check)."""

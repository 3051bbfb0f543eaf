"""Commands of the `pimms` CLI (module reserved: scaffold)."""

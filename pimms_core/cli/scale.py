"""Commands of the `pimms` CLI (module reserved: scale)."""

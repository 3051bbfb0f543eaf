"""The pluggy markers of the `pimms` project, in a module of their own: importing them is cheap."""

import pluggy

PROJECT_NAME = "pimms"
ENTRY_POINT_GROUP = "pimms"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

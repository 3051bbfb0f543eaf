"""pimms core: the contract between PIMMS mediation sites and partner plugins.

Plugins import `hookimpl` from here. Everything is loaded on first use, so that importing the
package (and `pimms --help`) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pimms_core.facade import Pimms
    from pimms_core.markers import hookimpl, hookspec

__all__ = ["Pimms", "__version__", "hookimpl", "hookspec"]


def __getattr__(name: str) -> Any:
    if name in ("hookimpl", "hookspec"):
        from pimms_core import markers

        return getattr(markers, name)
    if name == "Pimms":
        from pimms_core.facade import Pimms

        return Pimms
    raise AttributeError(f"module 'pimms_core' has no attribute {name!r}")

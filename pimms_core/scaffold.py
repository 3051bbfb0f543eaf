"""`pimms new-plugin NAME`: a new partner plugin distribution, working from the first minute.

The template (`pimms_core/templates/plugin/`, package data) is a complete plugin of an imaginary
partner API: declaration, translation, simulator, respx unit tests and the conformance suite.
It installs, is listed by `pimms partners` and passes its tests as generated; the author then
replaces the imaginary API with the partner's, keeping the tests green.

Files are rendered with `string.Template` (`$package`, `$partner_id`...), and lose their
`.tmpl` suffix; a `__package__` folder takes the package's name. Lines marking the regions the
author's guide quotes (`# [doc:NAME]`, `# [/doc:NAME]`) are left out of generated files.
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from string import Template

from attrs import frozen

from pimms_core.errors import InvalidInput

TEMPLATE_PACKAGE = "pimms_core"
TEMPLATE_DIR = "templates/plugin"
TEMPLATE_SUFFIX = ".tmpl"
PACKAGE_DIR = "__package__"

_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_MAX_NAME = 32
MARKER = re.compile(r"\s*# \[/?doc:[\w-]+\]\s*")
"""A line marking a region quoted by the docs: `# [doc:NAME]` ... `# [/doc:NAME]`."""


@frozen
class PluginNames:
    """Every name a plugin's NAME gives: `keolis-demo` is distribution `pimms-keolis-demo`,
    package `pimms_keolis_demo`, partner id and entry point `keolis-demo`."""

    partner_id: str
    distribution: str
    package: str
    display_name: str
    env_prefix: str
    claim_prefix: str

    @classmethod
    def of(cls, name: str) -> PluginNames:
        """Check NAME and derive the others; `InvalidInput` says what a valid name is."""
        name = name.strip()
        if name.startswith(("pimms-", "pimms_")):
            raise InvalidInput(
                "give the partner's name without the pimms- prefix (keolis-demo makes the "
                "distribution pimms-keolis-demo)"
            )
        if not (2 <= len(name) <= _MAX_NAME and _NAME.fullmatch(name)):
            raise InvalidInput(
                f"{name!r} is not a valid plugin name: expected 2 to {_MAX_NAME} lowercase "
                "letters and digits, starting with a letter, words joined by single hyphens "
                "(for example keolis or keolis-demo)"
            )
        words = name.split("-")
        return cls(
            partner_id=name,
            distribution=f"pimms-{name}",
            package=f"pimms_{name.replace('-', '_')}",
            display_name=" ".join(word.capitalize() for word in words),
            env_prefix="_".join(words).upper(),
            claim_prefix=name.upper(),
        )

    def mapping(self) -> dict[str, str]:
        return {
            "partner_id": self.partner_id,
            "distribution": self.distribution,
            "package": self.package,
            "display_name": self.display_name,
            "env_prefix": self.env_prefix,
            "claim_prefix": self.claim_prefix,
        }


@frozen
class CreatedPlugin:
    """What `create_plugin` wrote: the distribution's folder, its names, its files."""

    path: Path
    names: PluginNames
    files: tuple[str, ...]


def template_root() -> Traversable:
    """The template, from the installed pimms-core (a wheel or an editable install)."""
    return files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIR)


def template_files(root: Traversable | None = None) -> dict[str, str]:
    """The template's files, by their path in the template (POSIX, `.tmpl` included)."""
    found: dict[str, str] = {}

    def walk(folder: Traversable, prefix: PurePosixPath) -> None:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name == "__pycache__":
                continue
            if entry.is_dir():
                walk(entry, prefix / entry.name)
            elif entry.name.endswith(TEMPLATE_SUFFIX):
                found[str(prefix / entry.name)] = entry.read_text(encoding="utf-8")

    walk(root or template_root(), PurePosixPath())
    return found


def render_text(text: str, names: PluginNames, *, keep_markers: bool = False) -> str:
    """One template text with the plugin's names in (the docs render their quotes with it)."""
    rendered = Template(text).substitute(names.mapping())
    if keep_markers:
        return rendered
    return "".join(
        line for line in rendered.splitlines(keepends=True) if not MARKER.fullmatch(line)
    )


def output_path(template_path: str, names: PluginNames) -> str:
    """Where a template file lands in the generated distribution."""
    parts = [names.package if part == PACKAGE_DIR else part for part in template_path.split("/")]
    return "/".join(parts).removesuffix(TEMPLATE_SUFFIX)


def render(names: PluginNames) -> dict[str, str]:
    """The generated distribution's files, by relative path."""
    return {
        output_path(path, names): render_text(text, names)
        for path, text in template_files().items()
    }


def create_plugin(name: str, directory: Path | str = ".") -> CreatedPlugin:
    """Write the distribution `pimms-NAME` into `directory/pimms-NAME`.

    Raises `InvalidInput` for an invalid name, or when that folder exists and is not empty
    (nothing is overwritten).
    """
    names = PluginNames.of(name)
    target = Path(directory) / names.distribution
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput(
            f"{target} already exists and is not empty: nothing was written; "
            "choose another --directory, or remove it"
        )
    rendered = render(names)
    for relative, text in rendered.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return CreatedPlugin(target, names, tuple(rendered))

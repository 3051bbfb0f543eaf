"""Guards on the plugin author's guide (docs/writing-a-plugin.md), so that it cannot rot.

- Every hookspec of `pimms_core/hookspecs.py` is documented with its exact signature, built
  here with `inspect.signature`; the guide documents no hook that does not exist.
- Every Python and TOML block of the guide is a quote of tested code, byte for byte: a region
  of the plugin template (rendered for a partner named `acme`; the generated plugin's own tests
  run in tests/test_scaffold.py) or of `docs/examples/`, whose files are tested below.
- Every hook is exercised by at least one test, checked by tracing rather than by grep: the
  test functions that name a hook (or its operation: `lookup_account`, `sandbox`...) are run
  in a child pytest whose every pimms hook implementation is wrapped to record its call, until
  each hook has been called once. A hook that only appears in tests without ever running fails.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import respx

from pimms_core import hookspecs
from pimms_core.config import Config, resolve_settings
from pimms_core.models import ClaimState
from pimms_core.scaffold import PluginNames, create_plugin, render_text, template_files
from pimms_core.testing import fresh_host, live_pimms, pytest_plugin
from tests.fakes import ACCOUNT_BODY, ACME_BASE, AcmePlugin

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "writing-a-plugin.md"
EXAMPLES = ROOT / "docs" / "examples"
SNIPPET = re.compile(
    r"<!-- snippet: (?P<source>\S+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)```\n", re.S
)
BLOCK = re.compile(r"^```(?P<lang>\w*)\n(?P<code>.*?)^```$", re.S | re.M)
HOOKSPECS_MARK = "<!-- hookspecs: checked by tests/test_docs.py -->\n```python\n"
QUOTED_LANGS = {"python", "toml"}
DOC_NAME = "acme"
"""The partner the guide's quotes of the template are rendered for."""


def hook_names() -> list[str]:
    return sorted(
        name
        for name, value in vars(hookspecs).items()
        if name.startswith("pimms_") and inspect.isfunction(value)
    )


def documented_signature(name: str) -> str:
    """`def pimms_x(a: A, b: B) -> R: ...`, as `inspect.signature` gives it (annotations are
    the source's text: hookspecs.py postpones their evaluation)."""
    signature = inspect.signature(getattr(hookspecs, name))

    def text(annotation: Any) -> str:
        return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)

    params = ", ".join(f"{p.name}: {text(p.annotation)}" for p in signature.parameters.values())
    return f"def {name}({params}) -> {text(signature.return_annotation)}: ..."


def region(text: str, name: str) -> str:
    """The lines between `# [doc:name]` and `# [/doc:name]`, without blank lines at the ends."""
    match = re.search(
        rf"^[ \t]*# \[doc:{re.escape(name)}\]\n(.*?)^[ \t]*# \[/doc:{re.escape(name)}\]$",
        text,
        re.S | re.M,
    )
    assert match, f"no region {name!r}"
    return match.group(1).strip("\n") + "\n"


def quoted_source(source: str) -> str:
    """What a `<!-- snippet: SOURCE -->` quotes: `template/PATH#REGION` (the template rendered
    for acme), `docs/examples/FILE#REGION`, or a whole `docs/examples/FILE`."""
    path, _, name = source.partition("#")
    if path.startswith("template/"):
        raw = template_files()[path.removeprefix("template/")]
        text = render_text(raw, PluginNames.of(DOC_NAME), keep_markers=True)
    else:
        text = (ROOT / path).read_text(encoding="utf-8")
    return region(text, name) if name else text


def test_the_guide_exists_and_follows_the_authors_order() -> None:
    headings = [line for line in GUIDE.read_text().splitlines() if line.startswith("## ")]
    order = ["Start", "contract", "context", "statuses", "simulator", "Testing", "check"]
    order += ["sandbox serve", "Packaging"]
    positions = [next(i for i, h in enumerate(headings) if word in h) for word in order]
    assert positions == sorted(positions), headings


def test_every_hookspec_is_documented_with_its_exact_signature() -> None:
    guide = GUIDE.read_text()
    start = guide.index(HOOKSPECS_MARK) + len(HOOKSPECS_MARK)
    block = guide[start : guide.index("```", start)]
    documented = [line for line in block.splitlines() if line.startswith("def ")]
    assert documented == [documented_signature(name) for name in hook_names()]
    for name in hook_names():
        assert f"### `{name}`" in guide, f"{name} has no section of its own"


def test_the_guide_names_no_hook_that_does_not_exist() -> None:
    named = set(re.findall(r"(?<![\w.])pimms_[a-z_]+(?![\w.])", GUIDE.read_text()))
    packages = {"pimms_core"} | {PluginNames.of(n).package for n in (DOC_NAME, "keolis-demo")}
    fixtures = set(vars(pytest_plugin))  # the kit's fixtures: pimms_host, pimms_canary...
    unknown = named - set(hook_names()) - packages - fixtures
    assert not unknown, f"the guide names hooks that do not exist: {sorted(unknown)}"


def test_every_code_block_quotes_tested_code_byte_for_byte() -> None:
    guide = GUIDE.read_text()
    quoted = {m.start("code"): m for m in SNIPPET.finditer(guide)}
    hookspecs_block = guide.index(HOOKSPECS_MARK) + len(HOOKSPECS_MARK)
    for block in BLOCK.finditer(guide):
        if block.group("lang") not in QUOTED_LANGS or block.start("code") == hookspecs_block:
            continue
        line = guide.count("\n", 0, block.start()) + 1
        assert block.start("code") in quoted, f"line {line}: this block quotes no tested source"
    assert quoted, "the guide quotes nothing"
    for match in quoted.values():
        source = match.group("source")
        assert match.group("code") == quoted_source(source), f"{source} differs from the guide"


def test_every_region_marked_in_the_template_is_quoted() -> None:
    guide = GUIDE.read_text()
    for path, text in template_files().items():
        for name in re.findall(r"# \[doc:([\w-]+)\]", text):
            assert f"<!-- snippet: template/{path}#{name} -->" in guide, f"{path}#{name}"


# --- the examples the guide quotes, at work --------------------------------------------------


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def acme() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=ACME_BASE, assert_all_called=False) as router:
        yield router


def test_find_claim_example_finds_the_claim_instead_of_sending_it_again(
    acme: respx.MockRouter,
) -> None:
    example = load_example("find_claim")

    class LookupAcme(AcmePlugin):
        pimms_find_claim = staticmethod(example.pimms_find_claim)

    found = {"id": "C-9", "status": "NEW", "created_at": "2026-03-10T10:00:00+00:00"}
    finder = acme.get("/v1/claims", params={"caller_ref": "K1"})
    finder.side_effect = [
        httpx.Response(200, json={"claims": [found]}),
        httpx.Response(200, json={"claims": []}),
    ]
    created = {"id": "C-10", "status": "NEW", "at": "2026-03-10T10:00:00+00:00"}
    sender = acme.post("/claims").respond(201, json=created)
    env = {"ACME_KEY": "k"}
    plugin = LookupAcme(idempotency="lookup")
    with live_pimms(plugin, ACME_BASE, settings={"api_key_env": "ACME_KEY"}, env=env) as pimms:
        claim = pimms.open_claim("acme", "12345678", "billing", "x", idempotency_key="K1")
        assert (claim.claim_ref, claim.state, claim.replayed) == ("C-9", ClaimState.RECEIVED, True)
        assert not sender.called
        assert pimms.open_claim("acme", "12345678", "billing", "x", idempotency_key="K1").claim_ref
        assert sender.call_count == 1 and finder.call_count == 2


def test_timing_wrapper_example_wraps_every_partners_lookups(acme: respx.MockRouter) -> None:
    example = load_example("timing_wrapper")
    acme.get("/accounts/12345678").respond(200, json=ACCOUNT_BODY)
    acme.get("/accounts/87654321").respond(404)
    env = {"ACME_KEY": "k"}
    settings = {"api_key_env": "ACME_KEY"}
    with live_pimms(
        AcmePlugin(), ACME_BASE, settings=settings, env=env, extra_plugins=(example,)
    ) as pimms:
        assert pimms.lookup_account("acme", "12345678").reference == "12345678"
        with pytest.raises(Exception, match="acme"):
            pimms.lookup_account("acme", "87654321")
    assert [partner for partner, _ in example.DURATIONS] == ["acme", "acme"]
    assert all(seconds >= 0 for _, seconds in example.DURATIONS)


def test_the_configuration_example_configures_the_generated_plugin(tmp_path: Path) -> None:
    created = create_plugin(DOC_NAME, tmp_path)
    sys.path.insert(0, str(created.path))
    try:
        import pimms_acme  # type: ignore[import-not-found]

        info = fresh_host(pimms_acme).partner(DOC_NAME).info
    finally:
        sys.path.remove(str(created.path))
        for name in [m for m in sys.modules if m.split(".")[0] == "pimms_acme"]:
            del sys.modules[name]
    env = {"ACME_API_KEY": "canary-key-3b7e"}
    config = Config.load(EXAMPLES / "pimms.toml", env=env)
    settings = resolve_settings(info, config.partner(DOC_NAME), env)
    assert settings.secret("api_key") == "canary-key-3b7e"
    assert config.partner(DOC_NAME).base_url == info.base_url
    assert not config.partner(DOC_NAME).sandbox


# --- every hook exercised by a test, traced ----------------------------------------------------

TRACER = """
# Loaded with -p: wraps each pimms hook implementation to record that it ran, and runs the
# candidate tests of the hooks not seen yet, the hook with the fewest candidates left first.
import json
import os

import pluggy
import pytest

with open(os.environ["PIMMS_HOOK_TRACE_QUEUES"]) as queues:
    QUEUES = json.load(queues)
SEEN = set()
_init = pluggy.HookImpl.__init__


def _traced_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    name = self.opts.get("specname") or self.function.__name__
    if name in QUEUES and not (self.wrapper or self.hookwrapper):  # wrappers stay generators
        function = self.function

        def traced(*a, **k):
            SEEN.add(name)
            return function(*a, **k)

        self.function = traced


pluggy.HookImpl.__init__ = _traced_init


def _of(node, nodeid):
    return nodeid == node or nodeid.startswith((node + "[", node + "::"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    done = set()
    while True:
        pending = [h for h, queue in QUEUES.items() if h not in SEEN and queue]
        if not pending:
            return True
        hook = min(pending, key=lambda h: len(QUEUES[h]))
        node = QUEUES[hook].pop(0)
        for item in [i for i in session.items if _of(node, i.nodeid) and i.nodeid not in done]:
            done.add(item.nodeid)
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=None)
            if hook in SEEN:
                break


def pytest_unconfigure(config):
    with open(os.environ["PIMMS_HOOK_TRACE_OUT"], "w") as out:
        json.dump(sorted(SEEN), out)
"""
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def candidate_tests(hooks: list[str]) -> dict[str, list[str]]:
    """For each hook, the node ids of the tests likely to run it, likeliest first: tests that
    name it, tests that name its operation (`lookup_account`, `sandbox`...), then tests of a
    plugin implementing it, those whose names share a word with the hook first."""
    scored: dict[str, list[tuple[tuple[int, ...], str]]] = {hook: [] for hook in hooks}
    files = sorted(ROOT.glob("tests/**/test_*.py")) + sorted(ROOT.glob("plugins/*/tests/test_*.py"))
    for path in files:
        if path.name == Path(__file__).name:
            continue
        source = path.read_text(encoding="utf-8")
        plugin_source = ""  # a plugin's tests: the source of the plugin they test
        if path.relative_to(ROOT).parts[0] == "plugins":
            plugin_source = "".join(
                p.read_text(encoding="utf-8") for p in path.parent.parent.glob("pimms_*/*.py")
            )
        for node in ast.parse(source).body:
            if not isinstance(node, ast.FunctionDef | ast.ClassDef):
                continue
            if not node.name.startswith(("test_", "Test")):
                continue
            if "slow" in {ast.unparse(d).rsplit(".", 1)[-1] for d in node.decorator_list}:
                continue
            text = ast.get_source_segment(source, node) or ""
            node_id = f"{path.relative_to(ROOT)}::{node.name}"
            for hook in hooks:
                operation = hook.removeprefix("pimms_")
                score = (
                    hook in text,
                    operation in text,
                    f"def {hook}(" in plugin_source,
                    len(set(operation.split("_")) & set(node.name.split("_"))),
                )
                if any(score[:3]):
                    scored[hook].append((tuple(-int(x) for x in score), node_id))
    return {hook: [node_id for _, node_id in sorted(found)] for hook, found in scored.items()}


def test_every_hook_is_exercised_by_a_test(tmp_path: Path) -> None:
    hooks = hook_names()
    queues = candidate_tests(hooks)
    (tmp_path / "pimms_hook_trace.py").write_text(TRACER)
    out = tmp_path / "seen.json"
    (tmp_path / "queues.json").write_text(json.dumps(queues))
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "PIMMS_HOOK_TRACE_QUEUES": str(tmp_path / "queues.json"),
        "PIMMS_HOOK_TRACE_OUT": str(out),
    }
    files = sorted({node.split("::")[0] for queue in queues.values() for node in queue})
    done = subprocess.run(
        [*PYTEST, "-p", "pimms_hook_trace", "-m", "not slow", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    missing = sorted(set(hooks) - set(json.loads(out.read_text())))
    assert not missing, f"no test runs an implementation of {missing}"

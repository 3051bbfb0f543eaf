"""`pimms sandbox serve` and `pimms_core.serve`: the simulators over real loopback sockets.

The Python API is tested with small fake plugins whose simulators are plain WSGI apps; the
command line end to end with the installed EDF and La Poste plugins: a server process, and
CLI processes configured to call it "live".
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import attrs
import httpx
import pytest
from click.testing import CliRunner

from pimms_core import hookimpl, serve
from pimms_core.cli import cli
from pimms_core.config import Config, is_loopback, resolve_settings
from pimms_core.errors import InvalidInput, UnknownPartner
from pimms_core.facade import Pimms
from pimms_core.models import PluginRef, SettingSpec
from pimms_core.plugins import PluginHost
from pimms_core.sandbox import SandboxState
from tests.fakes import AcmePlugin, acme_info

PIMMS = [sys.executable, "-m", "pimms_core"]
SERVED = ["--partner", "edf", "--partner", "laposte"]
TOML_HEADER = "# pimms.toml: these partners then run live against their simulators"
ENV_HEADER = "# the simulators' published sandbox credentials, for the variables above"


def echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers where the request landed: the prefix it was mounted under, and the rest."""
    body = json.dumps({"script": environ["SCRIPT_NAME"], "path": environ["PATH_INFO"]})
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body.encode()]


class Simulated(AcmePlugin):
    """The fake partner plugin, with a simulator of our choosing (None: ships none)."""

    def __init__(self, partner_id: str, app: Any = echo_app) -> None:
        super().__init__(partner_id)
        self.app = app
        self.states: list[SandboxState] = []

    @hookimpl
    def pimms_sandbox(self, partner_id: str, state: SandboxState) -> Any:
        self.states.append(state)
        return self.app if partner_id == self.info.id else None


def facade(*plugins: Simulated) -> Pimms:
    refs = [(p, PluginRef(f"pimms-{p.info.id}", "0.1.0", p.info.id)) for p in plugins]
    host = PluginHost(use_entry_points=False, plugins=refs, strict=True, env={})
    return Pimms(Config.from_document({}, env={}), host, env={}, sandbox_state=SandboxState())


@pytest.fixture
def two() -> Iterator[serve.SandboxServer]:
    with serve.start_in_thread(facade(Simulated("acme"), Simulated("bolt"))) as server:
        yield server


def test_each_partner_is_served_under_its_prefix_on_one_port(two: serve.SandboxServer) -> None:
    assert two.base_url.startswith("http://127.0.0.1:") and two.port > 0
    assert two.urls == {"acme": f"{two.base_url}/acme", "bolt": f"{two.base_url}/bolt"}
    answer = httpx.get(f"{two.urls['bolt']}/accounts/12345678")
    assert answer.json() == {"script": "/bolt", "path": "/accounts/12345678"}
    index = httpx.get(two.base_url)
    assert index.status_code == 200
    assert index.json() == {"simulators": {"acme": "/acme", "bolt": "/bolt"}}
    elsewhere = httpx.get(f"{two.base_url}/nobody/accounts")
    assert elsewhere.status_code == 404 and elsewhere.json()["error"] == "not_found"


def test_a_client_with_the_prefix_as_base_url_reaches_the_simulator(
    two: serve.SandboxServer,
) -> None:
    """What the core's clients do with `base_url = ".../acme"`: relative paths stay under it."""
    with httpx.Client(base_url=two.urls["acme"]) as client:
        assert client.get("/claims/C-1").json() == {"script": "/acme", "path": "/claims/C-1"}


def test_only_the_partners_asked_for_are_served() -> None:
    pimms = facade(Simulated("acme"), Simulated("bolt"))
    with serve.start_in_thread(pimms, partners=["bolt"]) as server:
        assert list(server.urls) == ["bolt"]
        assert httpx.get(f"{server.base_url}/acme/x").status_code == 404


def test_each_simulator_gets_its_own_state() -> None:
    acme, bolt = Simulated("acme"), Simulated("bolt")
    states = {"acme": SandboxState(), "bolt": SandboxState()}
    with serve.start_in_thread(facade(acme, bolt), state_for=states.__getitem__):
        pass
    assert acme.states == [states["acme"]] and bolt.states == [states["bolt"]]


def test_the_default_state_is_the_data_directory_file(isolated: Path) -> None:
    acme = Simulated("acme")
    host = PluginHost(
        use_entry_points=False, plugins=[(acme, PluginRef("pimms-acme", "0", "acme"))], env={}
    )
    pimms = Pimms(Config.from_document({}, env={"PIMMS_DATA_DIR": str(isolated)}), host, env={})
    with serve.start_in_thread(pimms):
        pass
    assert [state.path for state in acme.states] == [isolated / "sandbox" / "acme.json"]


def test_at_least_32_requests_are_answered_at_once() -> None:
    """Each request waits inside the simulator until 40 are in at the same time: a server
    answering fewer at once would leave them waiting until the barrier's timeout breaks it."""
    barrier = threading.Barrier(40, timeout=10)

    def meeting(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        barrier.wait()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"met"]

    with (
        serve.start_in_thread(facade(Simulated("acme", meeting))) as server,
        ThreadPoolExecutor(40) as pool,
    ):
        url = server.urls["acme"] + "/meet"
        answers = list(pool.map(lambda _: httpx.get(url, timeout=15), range(40)))
    assert [a.status_code for a in answers] == [200] * 40
    assert not barrier.broken


def test_latency_delays_every_answer_without_serialising_them() -> None:
    with (
        serve.start_in_thread(facade(Simulated("acme")), latency=0.3) as server,
        ThreadPoolExecutor(16) as pool,
    ):
        started = time.perf_counter()
        answers = list(pool.map(lambda _: httpx.get(server.base_url, timeout=10), range(16)))
        elapsed = time.perf_counter() - started
    assert all(a.elapsed.total_seconds() >= 0.3 for a in answers)
    assert elapsed < 0.3 * 16 / 2  # side by side, not one after the other


def test_stop_releases_the_port() -> None:
    pimms = facade(Simulated("acme"))
    server = serve.start_in_thread(pimms)
    port = server.port
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")
    with serve.start_in_thread(pimms, port=port) as again:
        assert httpx.get(again.base_url).status_code == 200


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(serve.ServeError) as caught:
            serve.bind(facade(Simulated("acme")), port=port)
    assert str(caught.value) == (
        f"cannot listen on 127.0.0.1:{port}: Address already in use "
        "(choose another --port, or 0 for any free port)"
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.org"])
def test_a_non_loopback_host_is_refused_unless_allowed_explicitly(host: str) -> None:
    with pytest.raises(InvalidInput, match="not a loopback address"):
        serve.bind(facade(Simulated("acme")), host=host, port=0)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("localhost.example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_simulator_errors() -> None:
    none = Simulated("acme", app=None)
    with pytest.raises(UnknownPartner):
        serve.bind(facade(Simulated("bolt")), partners=["nobody"], port=0)
    with pytest.raises(serve.ServeError, match="acme: its plugin ships no simulator"):
        serve.bind(facade(none, Simulated("bolt")), partners=["acme"], port=0)
    with serve.start_in_thread(facade(none, Simulated("bolt"))) as server:
        assert list(server.urls) == ["bolt"]  # all partners: the one without is left out
    with pytest.raises(serve.ServeError, match="nothing to serve"):
        serve.bind(facade(none), port=0)
    with pytest.raises(InvalidInput, match="latency"):
        serve.bind(facade(Simulated("bolt")), port=0, latency=-1)


def test_requests_are_logged_without_their_path(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pimms.sandbox")
    with serve.start_in_thread(facade(Simulated("acme"))) as server:
        httpx.get(f"{server.urls['acme']}/accounts/canary-ref-5521?name=canary-name")
    assert "acme GET -> HTTP 200" in caplog.messages
    assert "canary" not in caplog.text


def test_config_snippet_is_valid_configuration_with_its_variables() -> None:
    info = acme_info()  # plus a non-secret setting with a sandbox value: written as is
    info = attrs.evolve(
        info, settings=[*info.settings, SettingSpec("region", "the region", sandbox_value="n")]
    )
    urls = {"acme": "http://127.0.0.1:8765/acme", "other": "http://127.0.0.1:8765/other"}
    snippet = serve.config_snippet([info], urls)
    assert snippet == (
        "[partners.acme]\n"
        'base_url = "http://127.0.0.1:8765/acme"\n'
        'api_key_env = "PIMMS_SANDBOX_ACME_API_KEY"\n'
        'region = "n"\n'
    )
    env = serve.sandbox_env([info], urls)
    assert env == {"PIMMS_SANDBOX_ACME_API_KEY": "sbx"}
    config = Config.from_document(tomllib.loads(snippet), env=env)
    partner = config.partner("acme")
    assert not partner.sandbox  # live: it calls the served simulator for real
    settings = resolve_settings(info, partner, env)
    assert settings.secret("api_key") == "sbx" and settings["region"] == "n"


def test_cli_refuses_a_non_loopback_host_as_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["sandbox", "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "not a loopback address" in result.output and "--allow-non-loopback" in result.output


def test_cli_port_in_use_fails_with_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        result = CliRunner().invoke(
            cli, ["sandbox", "serve", "--port", port], env={"PIMMS_LOAD_PLUGINS": "edf"}
        )
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(choose another --port, or 0 for any free port)\n"
    )


# --- end to end: a server process, and CLI processes running "live" against it ---------------


def read_until(stream: IO[str], last: str, deadline: float = 20.0) -> list[str]:
    """Lines of a child's output up to the one starting with `last`."""
    lines: list[str] = []
    ends = time.monotonic() + deadline
    while time.monotonic() < ends:
        line = stream.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith(last):
            return lines
    raise AssertionError(f"the server did not print {last!r}; it printed {lines}")


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    env = {**os.environ, "PIMMS_DATA_DIR": str(tmp_path / "server-data")}
    child = subprocess.Popen(
        [*PIMMS, "sandbox", "serve", "--port", "0", "--json", *SERVED],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        started = json.loads("\n".join(read_until(child.stdout, "}")))
        yield child, started
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_cli_lookup_claim_and_status_run_live_against_the_served_simulators(
    server_process: tuple[subprocess.Popen[str], dict[str, Any]], tmp_path: Path
) -> None:
    child, started = server_process
    assert set(started["simulators"]) == {"edf", "laposte"}
    config = tmp_path / "pimms.toml"
    config.write_text(started["config"])
    env = {
        **os.environ,
        **started["env"],
        "PIMMS_CONFIG": str(config),
        "PIMMS_DATA_DIR": str(tmp_path / "client-data"),
    }

    def pimms(*args: str) -> dict[str, Any]:
        done = subprocess.run([*PIMMS, *args, "--json"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "SANDBOX" not in done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        assert result["mode"] == "live"
        return result

    assert pimms("lookup", "edf", "4001234567")["holder_name"] == "Mme Camille Martin"
    opened = pimms(
        "claim", "open", "edf", "--account", "4001234567", "--category", "billing",
        "--description", "Facture contestée", "--idempotency-key", "serve-e2e-1",
    )  # fmt: skip
    status = pimms("claim", "status", "edf", opened["claim_ref"])
    assert status["claim_ref"] == opened["claim_ref"] and status["state"] == "received"
    parcel = pimms("lookup", "laposte", "6A00000000001")
    assert parcel["partner"] == "laposte"
    # The claim lives in the server process's state, not in the client's data directory.
    server_state = json.loads((tmp_path / "server-data" / "sandbox" / "edf.json").read_text())
    assert opened["claim_ref"] in json.dumps(server_state)
    assert not (tmp_path / "client-data" / "sandbox").exists()

    child.send_signal(signal.SIGINT)  # Ctrl-C
    _, stderr = child.communicate(timeout=10)
    assert child.returncode == 0
    assert stderr.splitlines()[-1] == "sandbox server stopped"
    assert "Traceback" not in stderr and "4001234567" not in stderr


def test_cli_prints_base_urls_and_a_config_to_paste_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PIMMS_DATA_DIR": str(tmp_path), "PIMMS_LOAD_PLUGINS": "edf,sncf"}
    child = subprocess.Popen(
        [*PIMMS, "sandbox", "serve", "--port", "0", "--latency", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        lines = read_until(child.stdout, "export PIMMS_SANDBOX_SNCF_API_KEY=")
        base = lines[0].split(" on ", 1)[1].split(",", 1)[0]
        assert lines[0] == f"Serving 2 simulator(s) on {base}, answers delayed 5 ms"
        assert lines[1:4] == ["PARTNER  BASE URL", f"edf      {base}/edf", f"sncf     {base}/sncf"]
        toml_start = lines.index(TOML_HEADER)
        toml_end = lines.index(ENV_HEADER)
        pasted = tomllib.loads("\n".join(lines[toml_start + 1 : toml_end]))
        assert pasted["partners"]["edf"] == {
            "base_url": f"{base}/edf",
            "client_id_env": "PIMMS_SANDBOX_EDF_CLIENT_ID",
            "client_secret_env": "PIMMS_SANDBOX_EDF_CLIENT_SECRET",
        }
        assert pasted["partners"]["sncf"]["base_url"] == f"{base}/sncf"
        assert lines[toml_end + 1 :] == [
            "export PIMMS_SANDBOX_EDF_CLIENT_ID=sandbox-edf-client",
            "export PIMMS_SANDBOX_EDF_CLIENT_SECRET=sandbox-edf-secret",
            "export PIMMS_SANDBOX_SNCF_API_KEY=sandbox-sncf-key",
        ]
        assert httpx.get(base).json() == {"simulators": {"edf": "/edf", "sncf": "/sncf"}}
    finally:
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=10)
    assert child.returncode == 0
    assert stderr == "Ctrl-C to stop.\nsandbox server stopped\n"

"""A Docker engine with Compose v2 for the compose test (tests/compose/), found or started.

If ``docker info`` answers, that engine is used as it is. Otherwise, as root, this installs
what is missing and starts one: Debian's ``docker.io`` (the daemon, containerd, runc), and
the Compose v2 plugin — bookworm's ``docker-compose`` package is Compose v1, so the plugin
comes from trixie's ``docker-compose`` package (one .deb, fetched with a private apt list so
the machine's apt sources stay as they are, and installed as a local file: it needs only
libc6). The daemon started here
runs until ``stop()``; a daemon that was already running is never stopped.

    python3 deploy/docker/engine.py start    # exit 0: ready; 3: no engine here (one line why)
    python3 deploy/docker/engine.py stop     # stops the daemon only if `start` started it
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: Where a daemon this module started notes its process id (to stop only that one).
STARTED_MARK = Path("/run/durable-redis/dockerd.pid")
DAEMON_LOG = Path("/var/log/durable-redis-dockerd.log")
#: The private apt state used to fetch trixie's Compose v2 package.
APT_DIR = Path("/var/cache/durable-redis/apt-trixie")
MIRROR = "http://deb.debian.org/debian"


class NoEngine(Exception):
    """No Docker engine can be had on this machine; the message says why, in one line."""


@dataclass(frozen=True)
class Engine:
    docker: str  # the docker CLI
    version: str  # the daemon's version
    compose: str  # `docker compose version --short`
    started_here: bool


def run(
    args: list[str],
    timeout: float = 60,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """A command's output, as text; raises TimeoutExpired past ``timeout``."""
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env
    )


def daemon_version(docker: str) -> str | None:
    """The daemon's version if one answers, else None."""
    try:
        done = run([docker, "version", "--format", "{{.Server.Version}}"], timeout=20)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def compose_version(docker: str) -> str | None:
    """Compose v2's version if the plugin is there, else None (v1 does not count)."""
    done = run([docker, "compose", "version", "--short"], timeout=20)
    version = done.stdout.strip().lstrip("v")
    return version if done.returncode == 0 and version[:1].isdigit() and version[0] != "1" else None


def apt_install(*packages: str) -> None:
    """Debian's packages, without recommends; the lists are refreshed once if needed."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # (another install on the machine holds dpkg's lock for a while: wait for it)
    command = ["apt-get", "-oDPkg::Lock::Timeout=300", "install", "-y", "-qq"]
    command += ["--no-install-recommends", *packages]
    if run(command, timeout=600, env=env).returncode == 0:
        return
    run(["apt-get", "update", "-qq"], timeout=300, env=env)
    done = run(command, timeout=600, env=env)
    if done.returncode != 0:
        raise NoEngine(f"apt-get install {' '.join(packages)} failed: {done.stderr.strip()[-200:]}")


def install_compose_v2() -> None:
    """Trixie's docker-compose (Compose v2, a CLI plugin) beside bookworm: one .deb, fetched
    with a private apt list, installed as a local file (its only dependency is libc6)."""
    lists, archives = APT_DIR / "lists", APT_DIR / "archives"
    for folder in (lists / "partial", archives / "partial"):
        folder.mkdir(parents=True, exist_ok=True)
    sources = APT_DIR / "sources.list"
    sources.write_text(f"deb {MIRROR} trixie main\n")
    options = [
        f"-oDir::Etc::SourceList={sources}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={lists}",
        f"-oDir::Cache::Archives={archives}",
        "-oAPT::Sandbox::User=root",  # (the private folders are root's)
    ]
    if run(["apt-get", *options, "update", "-qq"], timeout=300).returncode != 0:
        raise NoEngine("cannot read Debian trixie's package lists (for Compose v2)")
    with tempfile.TemporaryDirectory() as downloads:
        done = run(["apt-get", *options, "download", "docker-compose"], timeout=300, cwd=downloads)
        debs = list(Path(downloads).glob("docker-compose_*.deb"))
        if done.returncode != 0 or not debs:
            raise NoEngine(f"cannot fetch trixie's docker-compose: {done.stderr.strip()[-200:]}")
        install = ["apt-get", "-oDPkg::Lock::Timeout=300", "install", "-y", "-qq", str(debs[0])]
        done = run(install, timeout=600)
        if done.returncode != 0:
            raise NoEngine(f"installing {debs[0].name} failed: {done.stderr.strip()[-200:]}")


def uplink_mtu() -> int | None:
    """The MTU of the interface of the default route: containers must not send bigger
    packets than it carries (here 1400, under Docker's default 1500)."""
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000":
                return int(Path(f"/sys/class/net/{fields[0]}/mtu").read_text())
    except (OSError, ValueError, IndexError):
        pass
    return None


def start_daemon(docker: str) -> None:
    """dockerd in its own session, its log in DAEMON_LOG; returns when it answers."""
    args = ["dockerd"]
    mtu = uplink_mtu()
    if mtu is not None and mtu < 1500:
        args.append(f"--mtu={mtu}")
    log = DAEMON_LOG.open("ab")
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
    )
    log.close()
    STARTED_MARK.parent.mkdir(parents=True, exist_ok=True)
    STARTED_MARK.write_text(str(process.pid))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            STARTED_MARK.unlink(missing_ok=True)
            tail = DAEMON_LOG.read_text(errors="replace").strip().splitlines()[-1:]
            raise NoEngine(f"dockerd exited ({process.returncode}): {' '.join(tail)[-200:]}")
        if daemon_version(docker) is not None:
            return
        time.sleep(0.5)
    raise NoEngine(f"dockerd did not answer within 60 s (see {DAEMON_LOG})")


def start() -> Engine:
    """The engine that answers, or one started here; NoEngine if neither can be had."""
    root = os.geteuid() == 0
    if shutil.which("docker") is None and root:
        apt_install("docker.io")
    docker = shutil.which("docker")
    if docker is None:
        raise NoEngine("no docker command (install Debian's docker.io, as root)")
    started = False
    if daemon_version(docker) is None:
        if not root:
            raise NoEngine("the Docker daemon is not running and only root can start it")
        if shutil.which("dockerd") is None:
            apt_install("docker.io")
        start_daemon(docker)
        started = True
    if compose_version(docker) is None:
        if not root:
            raise NoEngine("`docker compose` (Compose v2) is missing and only root can add it")
        install_compose_v2()
    compose = compose_version(docker)
    if compose is None:
        raise NoEngine("`docker compose version` does not answer after installing Compose v2")
    version = daemon_version(docker) or "?"
    return Engine(docker, version, compose, started or STARTED_MARK.exists())


def stop() -> bool:
    """Stop the daemon that start() started (none other); True if one was stopped."""
    try:
        pid = int(STARTED_MARK.read_text())
    except (OSError, ValueError):
        return False
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "dockerd":
            STARTED_MARK.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
    except (OSError, ProcessLookupError):
        STARTED_MARK.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.2)
    STARTED_MARK.unlink(missing_ok=True)
    return True


def main(argv: list[str]) -> int:
    if argv[1:] == ["start"]:
        try:
            engine = start()
        except NoEngine as exc:
            print(f"no Docker engine on this machine: {exc}")
            return 3
        how = "started here" if engine.started_here else "already running"
        print(f"Docker engine {engine.version} ({how}), Compose {engine.compose}")
        return 0
    if argv[1:] == ["stop"]:
        print("stopped the Docker engine started here" if stop() else "nothing to stop")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

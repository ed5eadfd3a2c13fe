"""A minimal Debian bookworm root (``mmdebstrap --variant=apt``) that reaches the package
registries the way this host does, and a way to run a command in it.

What goes in, and nothing else: the host's apt sources (and the keyrings they name), apt proxy
settings, DNS (resolv.conf, hosts), its pip configuration (/etc/pip.conf, /etc/xdg/pip,
~/.config/pip, ~/.pip, PIP_* variables and proxy variables) with the local directories and files
that configuration points to (bind-mounted read-only: a local wheelhouse can be gigabytes), and
its extra CA certificates (/usr/local/share/ca-certificates; sites often reach their mirrors
through a TLS-inspecting proxy). The built root is cached as a tarball keyed by date under
/var/cache/airseal-tests (mmdebstrap writes it to a temporary name, then it is renamed: a
crashed build leaves no half-written cache); without the cache it is built from nothing.

Hand-written because no library does this; mmdebstrap builds the root, util-linux's unshare gives
a private mount namespace so nothing stays mounted after a crash.
"""

from __future__ import annotations

import datetime
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

CACHE = Path("/var/cache/airseal-tests")
SUITE = "bookworm"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def root_tarball() -> Path:
    """Today's cached minimal root, building it if there is none."""
    CACHE.mkdir(parents=True, exist_ok=True)
    today = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    tarball = CACHE / f"{SUITE}-apt-{today}.tar"
    if tarball.exists():
        return tarball
    partial = CACHE / f".{tarball.name}.{os.getpid()}.partial.tar"
    mmdebstrap = shutil.which("mmdebstrap")
    assert mmdebstrap is not None, "install mmdebstrap (scripts/setup --test does)"
    subprocess.run(
        [mmdebstrap, "--quiet", "--variant=apt", SUITE, str(partial)],
        check=True, capture_output=True, timeout=900,
    )
    partial.replace(tarball)
    for old in CACHE.glob(f"{SUITE}-apt-*.tar"):
        if old != tarball:
            old.unlink(missing_ok=True)
    return tarball


def extract_root(target: Path) -> Path:
    target.mkdir(parents=True)
    subprocess.run(
        ["tar", "-C", str(target), "--numeric-owner", "-xpf", str(root_tarball())],
        check=True, capture_output=True, timeout=300,
    )
    return target


def _copy_into(root: Path, path: Path) -> None:
    if not path.exists():
        return
    dest = root / path.relative_to("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        shutil.copytree(path, dest, dirs_exist_ok=True)
    else:
        shutil.copy2(path, dest)


def _copy_apt_sources(root: Path) -> None:
    apt = Path("/etc/apt")
    sources = [apt / "sources.list"] if (apt / "sources.list").exists() else []
    sources += sorted(apt.glob("sources.list.d/*.list"))
    sources += sorted(apt.glob("sources.list.d/*.sources"))
    # the root's own default sources go: the host's decide where packages come from
    for own in [root / "etc/apt/sources.list", *root.glob("etc/apt/sources.list.d/*")]:
        own.unlink()
    for source in sources:
        _copy_into(root, source)
        named = re.findall(r"(?:signed-by=|Signed-By:\s*)(/\S+?)(?:[\s\]]|$)", source.read_text())
        for keyring in named:
            _copy_into(root, Path(keyring))
    for conf in apt.glob("apt.conf.d/*"):
        if conf.is_file() and re.search(r"::Proxy|::proxy", conf.read_text(errors="replace")):
            _copy_into(root, conf)


def _pip_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in PROXY_VARIABLES}


def _pip_local_paths() -> list[Path]:
    """Local files and directories the host's pip configuration names (indexes, find-links,
    constraints, certificates)."""
    values: list[str] = list(_pip_environment().values())
    done = subprocess.run(
        ["python3", "-m", "pip", "config", "list"], capture_output=True, text=True, check=False,
        timeout=60,
    )
    for line in done.stdout.splitlines():
        _, _, value = line.partition("=")
        values.append(value.strip().strip("'\""))
    paths: set[Path] = set()
    for value in values:
        for word in value.split():
            word = word.removeprefix("file://")
            path = Path(word)
            if word.startswith("/") and path.exists():
                # a local index's pages (X/simple/NAME/) link its files beside it (X/files/)
                paths.add(path.parent if path.name == "simple" else path)
    return sorted(paths)


def prepare_root(root: Path, *, source_tree: Path) -> list[Path]:
    """Copy in what the host uses to reach the registries, and the repository at /src/airseal.
    Returns the local pip paths to bind-mount read-only when running in the root."""
    _copy_apt_sources(root)
    for path in (Path("/etc/resolv.conf"), Path("/etc/hosts"), Path("/etc/pip.conf"),
                 Path("/etc/xdg/pip"), Path.home() / ".config/pip", Path.home() / ".pip"):
        if path.is_relative_to(Path.home()):
            dest = root / "root" / path.relative_to(Path.home())
            if path.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(path, dest, dirs_exist_ok=True)
        elif path.is_dir():
            _copy_into(root, path)
        elif path.exists():  # resolv.conf may be a symlink to a runtime file: copy its contents
            dest = root / path.relative_to("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.unlink(missing_ok=True)
            shutil.copyfile(path, dest)
    _copy_into(root, Path("/usr/local/share/ca-certificates"))
    binds = []
    for path in _pip_local_paths():
        if path.is_dir():
            binds.append(path)
        else:
            _copy_into(root, path)
    dest = root / "src" / "airseal"
    if not (source_tree / ".git").exists():  # a checkout without git: all but build litter
        shutil.copytree(source_tree, dest, symlinks=True, ignore=shutil.ignore_patterns(
            ".venv", "demo", "build", "*.egg-info", "__pycache__", "node_modules", ".*_cache"))
        return binds
    dest.mkdir(parents=True)
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source_tree, capture_output=True, check=True, timeout=60,
    ).stdout.split(b"\0")
    existing = [f for f in files if f and (source_tree / os.fsdecode(f)).exists()]
    tar = subprocess.Popen(
        ["tar", "-C", str(source_tree), "--null", "-T", "-", "-cf", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    extract = subprocess.Popen(["tar", "-C", str(dest), "-xf", "-"], stdin=tar.stdout)
    assert tar.stdin is not None and tar.stdout is not None
    tar.stdin.write(b"\0".join(existing) + b"\0")
    tar.stdin.close()
    tar.stdout.close()
    assert extract.wait(timeout=300) == 0 and tar.wait(timeout=300) == 0
    return binds


def run_in_root(
    root: Path, command: str, *, binds: list[Path], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (a shell line) as root in the chroot, in a private mount namespace with
    /proc, /dev and the read-only pip paths mounted; everything is unmounted when it ends."""
    mounts = [
        f"mount -t proc proc {shlex.quote(str(root / 'proc'))}",
        f"mount --rbind /dev {shlex.quote(str(root / 'dev'))}",
    ]
    for path in binds:
        inside = shlex.quote(str(root / path.relative_to("/")))
        mounts.append(f"mkdir -p {inside} && mount --bind {shlex.quote(str(path))} {inside}"
                      f" && mount -o remount,bind,ro {inside}")
    env = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", **_pip_environment()}
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    script = " && ".join(
        [*mounts, f"exec chroot {shlex.quote(str(root))} /usr/bin/env -i {exports} "
                  f"/bin/sh -c {shlex.quote(command)}"]
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--fork", "/bin/sh", "-c", script],
        capture_output=True, text=True, timeout=timeout, check=False,
    )

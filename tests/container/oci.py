"""Build and run the project's container image without a Docker daemon (buildah, root).

Two ways to run a container from the image:
- `buildah_popen`: `buildah run --isolation chroot --network host`, as the image's USER; the
  plain case ("docker run --network host IMAGE").
- `locked_down_popen`: the image's rootfs mounted read-only in a private mount namespace
  (tmpfs /tmp, a model repository bind-mounted read-only, optionally a cgroup with a CPU quota
  mounted where Docker mounts a container's own cgroup), entered with chroot as the image's
  USER, with the image's ENV; the case "docker run --read-only --tmpfs /tmp -v repo:/models:ro
  --cpus N IMAGE", which buildah run cannot express.

Everything runs on the host's loopback; nothing is pulled from a registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "container" / "build.sh"
SIZE = ROOT / "scripts" / "container" / "image-size.sh"


def unavailable_reason() -> str | None:
    """Why the container tests cannot run here (None when they can)."""
    if os.environ.get("XNORNET_CONTAINER_TESTS", "1") == "0":
        return "XNORNET_CONTAINER_TESTS=0"
    if shutil.which("buildah") is None:
        return "buildah is not installed (apt-get install -y buildah debootstrap)"
    if os.geteuid() != 0:
        return "building and running images with chroot isolation needs root"
    if not (os.path.isdir("/sys/fs/cgroup") and shutil.which("unshare") and shutil.which("chroot")):
        return "unshare/chroot missing"
    return None


def sh(
    *args: str, timeout: float = 120, check: bool = True, **kw: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=check, **kw)  # type: ignore[call-overload]


def build(image: str, timeout: float = 900) -> str:
    """Build `image` from the Dockerfile with scripts/container/build.sh; returns its log."""
    proc = subprocess.run(
        [str(BUILD), "-t", image, "--prune"], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"image build failed ({proc.returncode}):\n{log[-6000:]}")
    return log


def image_bytes(image: str) -> int:
    return int(sh(str(SIZE), image, "--bytes").stdout.strip())


def inspect(image: str) -> dict:
    return json.loads(sh("buildah", "inspect", "--type", "image", image).stdout)


@dataclass
class ImageConfig:
    user: str
    env: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]
    workdir: str
    exposed: list[str]
    healthcheck: list[str]

    @classmethod
    def of(cls, image: str) -> ImageConfig:
        c = inspect(image)["Docker"]["config"]
        env = dict(kv.split("=", 1) for kv in c.get("Env") or [])
        return cls(
            user=c.get("User") or "",
            env=env,
            entrypoint=list(c.get("Entrypoint") or []),
            cmd=list(c.get("Cmd") or []),
            workdir=c.get("WorkingDir") or "/",
            exposed=sorted((c.get("ExposedPorts") or {}).keys()),
            healthcheck=list((c.get("Healthcheck") or {}).get("Test") or []),
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def working_container(image: str) -> Iterator[str]:
    name = f"xnornet-test-{os.getpid()}-{time.monotonic_ns() % 10**8}"
    sh("buildah", "from", "--pull=never", "--name", name, image)
    try:
        yield name
    finally:
        sh("buildah", "rm", name, check=False)


def buildah_run(
    ctr: str, argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    envs = [f"--env={k}={v}" for k, v in (env or {}).items()]
    return sh(
        "buildah",
        "run",
        "--isolation",
        "chroot",
        "--network",
        "host",
        *envs,
        ctr,
        "--",
        *argv,
        timeout=timeout,
        check=check,
    )


def buildah_popen(ctr: str, argv: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    envs = [f"--env={k}={v}" for k, v in env.items()]
    out = log.open("wb")
    return subprocess.Popen(
        ["buildah", "run", "--isolation", "chroot", "--network", "host", *envs, ctr, "--", *argv],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


# -- a read-only, quota-limited run ------------------------------------------------------------
@contextlib.contextmanager
def cpu_quota_cgroup(cpus: int) -> Iterator[tuple[str, str] | None]:
    """A cgroup limited to `cpus` CPUs: yields (version, host path), or None when none can be made.

    v1: /sys/fs/cgroup/cpu/<name> with cpu.cfs_quota_us; v2: /sys/fs/cgroup/<name> with cpu.max."""
    name = f"xnornet-test-{os.getpid()}"
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    path: Path | None = None
    version = ""
    try:
        if v2.exists():
            if "cpu" in v2.read_text().split():
                with contextlib.suppress(OSError):
                    Path("/sys/fs/cgroup/cgroup.subtree_control").write_text("+cpu")
                path = Path("/sys/fs/cgroup") / name
                path.mkdir()
                (path / "cpu.max").write_text(f"{cpus * 100000} 100000")
                version = "v2"
        elif Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists():
            path = Path("/sys/fs/cgroup/cpu") / name
            path.mkdir()
            (path / "cpu.cfs_period_us").write_text("100000")
            (path / "cpu.cfs_quota_us").write_text(str(cpus * 100000))
            version = "v1"
    except OSError:
        if path is not None:
            with contextlib.suppress(OSError):
                path.rmdir()
        path = None
    try:
        yield (version, str(path)) if path is not None else None
    finally:
        if path is not None:
            for _ in range(50):  # the cgroup empties once its processes are reaped
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


@contextlib.contextmanager
def mounted_rootfs(ctr: str) -> Iterator[str]:
    root = sh("buildah", "mount", ctr).stdout.strip()
    try:
        yield root
    finally:
        sh("buildah", "umount", ctr, check=False)


def locked_down_popen(
    rootfs: str,
    cfg: ImageConfig,
    argv: Sequence[str],
    *,
    env: dict[str, str],
    log: Path,
    volumes: dict[str, str] | None = None,
    cgroup: tuple[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Run argv in the image like `docker run --read-only --tmpfs /tmp -v SRC:DST:ro --cpus N`.

    The rootfs is bind-mounted read-only onto itself in a private mount namespace (the host's
    view of it is untouched); /proc, /dev, a read-only
    /sys and a tmpfs /tmp are added; `volumes` (host -> container path) are read-only binds; the
    process joins `cgroup` (as made by cpu_quota_cgroup) and, for cgroup v1, sees it mounted at
    /sys/fs/cgroup/cpu as Docker mounts a container's own cgroup. The host network is shared."""
    uid, _, gid = cfg.user.partition(":")
    run_env = {**cfg.env, "HOME": "/nonexistent", **env}
    script = [
        "set -e",
        'r="$1"; shift',
        'mount --bind "$ROOTFS" "$r"',
        'mount -o remount,bind,ro "$r"',
        'mount -t proc proc "$r/proc"',
        'mount --rbind /dev "$r/dev"',
        'mount -t sysfs -o ro sysfs "$r/sys"',
        'mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev tmpfs "$r/tmp"',
    ]
    for src, dst in (volumes or {}).items():
        # The mount point must exist in the (read-only) image; /models does.
        script += [
            f'mount --bind {shlex.quote(src)} "$r"{shlex.quote(dst)}',
            f'mount -o remount,bind,ro "$r"{shlex.quote(dst)}',
        ]
    if cgroup is not None:
        version, path = cgroup
        script.append(f"echo $$ > {shlex.quote(path)}/cgroup.procs")
        if version == "v1":
            script += [
                'mount -t tmpfs -o mode=755 tmpfs "$r/sys/fs/cgroup"',
                'mkdir "$r/sys/fs/cgroup/cpu"',
                f'mount --bind {shlex.quote(path)} "$r/sys/fs/cgroup/cpu"',
            ]
        else:
            script.append('mount --bind /sys/fs/cgroup "$r/sys/fs/cgroup"')
    envs = [f"{k}={v}" for k, v in run_env.items()]
    script.append(
        f'cd "$r"; exec chroot --userspec={uid}:{gid or uid} "$r" /usr/bin/env -i '
        + " ".join(shlex.quote(e) for e in envs)
        + ' sh -c \'cd "$0" && exec "$@"\' '
        + shlex.quote(cfg.workdir)
        + ' "$@"'
    )
    out = log.open("wb")
    return subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--fork",
            "--",
            "sh",
            "-c",
            "\n".join(script),
            "sh",
            rootfs,
            *argv,
        ],
        env={**os.environ, "ROOTFS": rootfs},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


# -- the server process, seen from the host ----------------------------------------------------
def session_processes(sid: int) -> list[tuple[int, str, int]]:
    """(pid, cmdline, real uid) of every process in session `sid`."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[3]) != sid:
                continue
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            uid = next(
                int(line.split()[1])
                for line in (d / "status").read_text().splitlines()
                if line.startswith("Uid:")
            )
        except (OSError, ValueError, IndexError, StopIteration):
            continue
        found.append((int(d.name), cmd, uid))
    return found


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def is_server(cmdline: str) -> bool:
    """The server's own process (python running `xnornet serve`), not a wrapper around it."""
    first = cmdline.split(" ", 1)[0].rsplit("/", 1)[-1]
    return first.startswith("python") and "xnornet" in cmdline and "serve" in cmdline


def stop(proc: subprocess.Popen[bytes], timeout: float = 40) -> int | None:
    """SIGTERM the server process only (what an orchestrator sends to a container's PID 1),
    wait for the container's command to end, then SIGKILL whatever is left of its session."""
    if proc.poll() is None:
        servers = [pid for pid, cmd, _ in session_processes(proc.pid) if is_server(cmd)]
        with contextlib.suppress(ProcessLookupError):
            if servers:
                for pid in servers:
                    os.kill(pid, signal.SIGTERM)
            else:
                os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    return proc.returncode


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15,
) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, e.read(), {k.lower(): v for k, v in e.headers.items()}


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    """Until GET /readyz answers 200; fails with the server's log if it exits or never gets ready."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}"
            )
        try:
            status, body, _ = http("GET", f"{base}/readyz", timeout=2)
            if status == 200:
                return
            last = f"{status} {body[:300]!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.3)
    raise AssertionError(f"not ready after {timeout} s ({last}):\n{log.read_text(errors='replace')[-4000:]}")

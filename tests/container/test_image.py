"""The container image: built from the Dockerfile, started, asked to classify over HTTP.

Runs only where buildah is installed and we are root (skips with the reason otherwise); the
base image is made locally with debootstrap when it is missing (scripts/container/), nothing
is pulled from a registry, and the server is reached on the host's loopback. The whole module
is bounded: a cold build (debootstrap + both stages) takes 2-4 minutes here, a warm one less
than one, each server start a few seconds.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from . import oci

REASON = oci.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"container tests: {REASON}")

IMAGE = os.environ.get("XNORNET_TEST_IMAGE", "localhost/xnornet:test")
MAX_IMAGE_BYTES = 200 * 10**6  # measured 195.1 MB on a plain debootstrap bookworm base
UID = 10001
BUNDLED = sorted((oci.ROOT / "service" / "models").glob("*/*/model.xnor"))


def report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    """A line in the test output even when pytest captures (image size, threads)."""
    with capsys.disabled():
        print(f"\n[container] {text}")


@pytest.fixture(scope="module")
def image() -> str:
    oci.build(IMAGE)
    return IMAGE


@pytest.fixture(scope="module")
def cfg(image: str) -> oci.ImageConfig:
    return oci.ImageConfig.of(image)


def png_28x28() -> bytes:
    from PIL import Image

    x = np.linspace(0, 255, 28, dtype=np.float32)
    img = Image.fromarray(np.outer(x, x[::-1] / 255).astype(np.uint8), mode="L")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def write_repository(repo: Path, name: str = "fashion-mnist-xnor", version: int = 1) -> None:
    """A small Fashion-MNIST-shaped XNOR model (random weights), written with engine.format."""
    from engine import builders
    from engine import format as fmt
    from engine.graph import Graph
    from engine.input_spec import InputSpec
    from training.data import FMNIST_LABELS

    rng = np.random.default_rng(6)
    signs, alpha = builders.binarize_weights(rng.standard_normal((16, 8, 3, 3)))
    nodes = [
        builders.conv2d(
            rng.standard_normal((8, 1, 3, 3)).astype(np.float32) * 0.5,
            rng.normal(0, 0.1, 8),
            stride=2,
            padding=1,
            name="conv1",
        ),
        builders.batchnorm(np.ones(8), rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 8), np.ones(8), name="bn1"),
        builders.bconv2d(signs, alpha, stride=2, padding=1, mode="xnor", name="bconv2"),
        builders.simple("relu"),
        builders.simple("flatten"),
        builders.linear(
            rng.standard_normal((10, 16 * 7 * 7)).astype(np.float32) * 0.05, rng.normal(0, 0.1, 10), name="fc"
        ),
    ]
    labels = list(FMNIST_LABELS)
    spec = InputSpec(1, 28, 28, color="gray", scale=1 / 255, mean=(0.5,), std=(0.25,))
    path = repo / name / str(version) / "model.xnor"
    path.parent.mkdir(parents=True)
    fmt.write_model(Graph(spec, nodes, labels, name), path)


def exercise(base: str, server: list[tuple[int, str, int]]) -> dict:
    """Classify over HTTP, read /metrics, check the server's uid; returns the classify answer."""
    status, body, _ = oci.http("GET", f"{base}/healthz")
    assert status == 200, body
    status, body, _ = oci.http("POST", f"{base}/v1/classify", png_28x28(), {"Content-Type": "image/png"})
    assert status == 200, body[:2000]
    answer = json.loads(body)
    preds = answer["predictions"]
    assert preds and all({"label", "probability"} <= p.keys() for p in preds), answer
    assert abs(sum(p["probability"] for p in preds) - 1.0) < 1e-3 or len(preds) < 10
    status, body, headers = oci.http("GET", f"{base}/metrics")
    assert status == 200
    assert headers.get("content-type", "").startswith("text/plain")
    text = body.decode()
    assert re.search(
        r'^xnornet_requests_total\{endpoint="/v1/classify",[^}]*status="200"\} [1-9]', text, re.M
    ), text[:3000]
    assert re.search(r'^xnornet_request_duration_seconds_count\{endpoint="/v1/classify"\} [1-9]', text, re.M)
    assert re.search(r"^xnornet_model_info\{[^}]*\} 1\.0$", text, re.M)
    servers = [(pid, uid) for pid, cmd, uid in server if oci.is_server(cmd)]
    assert servers, f"server process not found among {server}"
    assert all(uid == UID for _, uid in servers), f"server runs as {servers}, expected uid {UID}"
    answer["rss_mb"] = oci.rss_bytes(servers[0][0]) / 2**20
    return answer


def test_image_size_and_config(image: str, cfg: oci.ImageConfig, capsys: pytest.CaptureFixture[str]) -> None:
    size = oci.image_bytes(image)
    report(capsys, f"image {image}: {size / 1e6:.1f} MB (limit {MAX_IMAGE_BYTES / 1e6:.0f} MB)")
    assert size <= MAX_IMAGE_BYTES
    assert cfg.user == f"{UID}:{UID}"  # numeric: Kubernetes' runAsNonRoot can check it
    assert cfg.exposed == ["8000/tcp", "8001/tcp"]
    assert cfg.entrypoint and cfg.entrypoint[0].startswith("/"), "exec-form ENTRYPOINT"
    assert cfg.entrypoint + cfg.cmd == ["/opt/venv/bin/xnornet", "serve"]
    assert cfg.healthcheck[:1] == ["CMD"] and any("healthcheck" in a for a in cfg.healthcheck)
    assert cfg.env["XNORNET_HOST"] == "0.0.0.0" and cfg.env["XNORNET_PORT"] == "8000"
    assert cfg.env["XNORNET_GRPC_PORT"] == "8001"
    assert cfg.env["XNORNET_REPOSITORY"] == "/models"


def test_runtime_stage_has_no_compiler_and_bundles_models(image: str) -> None:
    with oci.working_container(image) as ctr:
        out = oci.buildah_run(
            ctr,
            [
                "sh",
                "-c",
                "for t in gcc cc c99 x86_64-linux-gnu-gcc-12; do "
                "command -v $t && exit 1; done; test ! -e /usr/include/python3.11; "
                "id -u; find /models -name model.xnor | sort",
            ],
            check=False,
        )
    assert out.returncode == 0, f"a compiler or headers in the runtime image:\n{out.stdout}{out.stderr}"
    lines = out.stdout.split()
    assert lines[0] == str(UID)
    bundled = sorted(str(p.relative_to(oci.ROOT / "service" / "models")) for p in BUNDLED)
    assert sorted(line.removeprefix("/models/") for line in lines[1:]) == bundled


def test_image_holds_no_benchmarks_and_no_apt_caches(image: str) -> None:
    """The benchmarks are not shipped (`xnornet bench` says it is not installed), and the apt
    steps left no package lists, caches or downloaded .debs behind, whatever the base."""
    script = (
        "cd /; sp=$(echo /opt/venv/lib/python3*/site-packages); "
        "find $sp -maxdepth 1 -iname '*bench*'; "  # a benchmarks package or distribution
        "find $sp/engine $sp/service $sp/training $sp/xnornet "
        "\\( -iname '*bench*' -o -iname 'loadtest*' -o -iname 'httpload*' \\) -print; "
        "find /var/lib/apt/lists /var/cache/apt -type f ! -name lock -print 2>/dev/null; "
        '/opt/venv/bin/python -c \'import importlib.util as u; print("spec", u.find_spec("benchmarks"))\'; '
        '/opt/venv/bin/xnornet bench 2>&1; echo "rc $?"'
    )
    with oci.working_container(image) as ctr:
        out = oci.buildah_run(ctr, ["sh", "-c", script]).stdout
    lines = out.strip().splitlines()
    assert lines[-3:] == [
        "spec None",
        "xnornet bench: comes with xnornet-benchmarks, not installed (pip install -e ./benchmarks)",
        "rc 2",
    ], out
    assert lines[:-3] == [], f"benchmark files or apt caches in the image:\n{out}"


def test_engine_threads_follow_the_cpus_the_container_may_use(
    image: str, cfg: oci.ImageConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    probe = [
        "python",
        "-c",
        "import engine.model as m, os; print(m.default_threads(), len(os.sched_getaffinity(0)))",
    ]
    with oci.working_container(image) as ctr:
        threads, cpus = map(int, oci.buildah_run(ctr, probe).stdout.split())
    report(capsys, f"default_threads() in the container, no CPU quota: {threads} (CPUs in affinity: {cpus})")
    assert threads == min(cpus, len(os.sched_getaffinity(0)))
    if cpus < 2:
        pytest.skip("one CPU: a 1-CPU quota would change nothing")
    with (
        oci.cpu_quota_cgroup(1) as cgroup,
        oci.working_container(image) as ctr,
        oci.mounted_rootfs(ctr) as rootfs,
    ):
        if cgroup is None:
            pytest.skip("cannot create a cgroup with a CPU quota here")
        log = tmp_path / "probe.log"
        proc = oci.locked_down_popen(rootfs, cfg, probe, env={}, log=log, cgroup=cgroup)
        rc = proc.wait(60)
        output = log.read_text()
        assert rc == 0, output
        quota_threads, quota_cpus = map(int, output.split()[-2:])
    report(
        capsys,
        f"default_threads() under a 1-CPU quota (cgroup {cgroup[0]}): {quota_threads} "
        f"(CPUs in affinity: {quota_cpus})",
    )
    assert quota_threads == 1


@pytest.mark.skipif(not BUNDLED, reason="the package bundles no models yet (service/models/*/*/model.xnor)")
def test_serves_the_bundled_model(
    image: str, cfg: oci.ImageConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Plain `docker run`: the image's ENTRYPOINT + CMD, its ENV, its USER, bundled models."""
    port = oci.free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with oci.working_container(image) as ctr:
        proc = oci.buildah_popen(ctr, cfg.entrypoint + cfg.cmd, {"XNORNET_PORT": str(port)}, log)
        try:
            oci.wait_ready(base, proc, log)
            answer = exercise(base, oci.session_processes(proc.pid))
            report(
                capsys,
                f"bundled model answered: {answer['predictions'][0]}; server RSS {answer['rss_mb']:.0f} MiB",
            )
            # The HEALTHCHECK command itself, run inside the container next to the server.
            hc = oci.buildah_run(ctr, cfg.healthcheck[1:], env={"XNORNET_PORT": str(port)}, check=False)
            assert hc.returncode == 0, hc.stderr
        finally:
            rc = oci.stop(proc)
    assert rc is not None, "server did not stop on SIGTERM"


def test_read_only_rootfs_read_only_repository_and_cpu_quota(
    image: str, cfg: oci.ImageConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`docker run --read-only --tmpfs /tmp -v repo:/models:ro --cpus 1`: serves a mounted repository."""
    repo = tmp_path / "repo"
    write_repository(repo)
    port = oci.free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {"XNORNET_PORT": str(port), "XNORNET_HOST": "127.0.0.1"}
    with (
        oci.cpu_quota_cgroup(1) as cgroup,
        oci.working_container(image) as ctr,
        oci.mounted_rootfs(ctr) as rootfs,
    ):
        proc = oci.locked_down_popen(
            rootfs,
            cfg,
            cfg.entrypoint + cfg.cmd,
            env=env,
            log=log,
            volumes={str(repo): "/models"},
            cgroup=cgroup,
        )
        try:
            oci.wait_ready(base, proc, log)
            exercise(base, oci.session_processes(proc.pid))
            # Many requests at once: batching, the thread pools and the body spooling under a
            # read-only root (a 2 MiB multipart upload is spooled to /tmp by the parser).
            from concurrent.futures import ThreadPoolExecutor

            png = png_28x28()
            with ThreadPoolExecutor(8) as pool:
                codes = list(
                    pool.map(
                        lambda _: oci.http("POST", f"{base}/v1/classify", png, {"Content-Type": "image/png"})[
                            0
                        ],
                        range(32),
                    )
                )
            assert codes == [200] * 32
            boundary = "xnornetboundary"
            padded = png + b"\0" * (2 * 1024 * 1024)  # trailing bytes after IEND are ignored by PNG decoders
            body = (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
                    f"Content-Type: image/png\r\n\r\n"
                ).encode()
                + padded
                + f"\r\n--{boundary}--\r\n".encode()
            )
            status, text, _ = oci.http(
                "POST",
                f"{base}/v1/classify",
                body,
                {"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            assert status in (200, 413, 415, 422), text[:1000]  # whatever the API says: never a 500
            assert proc.poll() is None
        finally:
            rc = oci.stop(proc)
    output = log.read_text(errors="replace")
    assert "Read-only file system" not in output, output[-3000:]
    assert rc == 0, f"exit status {rc} after SIGTERM:\n{output[-3000:]}"
    report(
        capsys,
        f"read-only rootfs + read-only /models + 1-CPU quota ({cgroup[0] if cgroup else 'no cgroup'}): "
        "served, drained and exited 0",
    )

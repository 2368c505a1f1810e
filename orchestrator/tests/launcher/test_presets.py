"""`--launch PRESET_OR_IMAGE` resolution: presets, images recognised by name, models, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyoka.orchestrator.launcher import PRESETS, LaunchConfigError, resolve_launch
from hyoka.orchestrator.launcher.containers import _run_options


def test_every_preset_names_a_known_backend() -> None:
    from hyoka.orchestrator.backends.registry import BACKEND_MODULES

    assert set(PRESETS) == {"llamacpp-cpu", "tgi", "vllm"}
    for preset in PRESETS.values():
        assert preset.backend in BACKEND_MODULES, preset.name
        assert preset.health_path.startswith("/")


def test_llamacpp_preset_defaults_to_the_smollm2_gguf() -> None:
    spec = resolve_launch("llamacpp-cpu")
    assert spec.image == PRESETS["llamacpp-cpu"].image
    assert spec.model.host_path is not None and spec.model.host_path.suffix == ".gguf"
    assert spec.model.host_path.is_file()
    options = _run_options(spec)
    assert options["volumes"] == {
        str(spec.model.host_path): {"bind": f"/models/{spec.model.host_path.name}", "mode": "ro"}
    }
    assert options["ports"] == {"8080/tcp": ("127.0.0.1", None)}  # loopback only
    assert "device_requests" not in options  # a CPU preset asks for no GPU
    assert options["command"][:2] == ["--model", f"/models/{spec.model.host_path.name}"]


def test_an_image_is_matched_to_the_preset_of_its_server() -> None:
    assert resolve_launch("localhost/hyoka/model-llamacpp-cpu:dev").preset.name == "llamacpp-cpu"
    tgi = resolve_launch("ghcr.io/huggingface/text-generation-inference:3.3.6", model="org/some-model")
    assert (tgi.preset.name, tgi.image, tgi.model.hub_id) == (
        "tgi",
        "ghcr.io/huggingface/text-generation-inference:3.3.6",
        "org/some-model",
    )
    assert resolve_launch("vllm/vllm-openai:latest").preset.name == "vllm"


def test_gpu_presets_request_gpus_and_a_cache_volume_for_hub_models() -> None:
    options = _run_options(resolve_launch("tgi", model="HuggingFaceTB/SmolLM2-135M"))
    assert [r["Count"] for r in options["device_requests"]] == [-1]
    assert options["volumes"] == {"hyoka-hf-cache": {"bind": "/data", "mode": "rw"}}
    assert "--enable-prefill-logprobs" in options["command"]
    assert "device_requests" not in _run_options(resolve_launch("tgi", gpus=False))


def test_a_local_model_folder_is_mounted_read_only(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    options = _run_options(resolve_launch("vllm", model=str(folder)))
    assert options["volumes"] == {str(folder): {"bind": "/models/my-model", "mode": "ro"}}
    assert options["command"][:2] == ["--model", "/models/my-model"]


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ("nginx:latest", {}, "not a preset (llamacpp-cpu, tgi, vllm)"),
        ("llamacpp-cpu", {"model": "/no/such/model.gguf"}, "--launch-model /no/such/model.gguf: no such file"),
        ("tgi", {"model": "./missing-folder"}, "no such file or folder"),
        ("tgi", {"startup_timeout_s": 0}, "--launch-timeout must be > 0"),
        ("tgi", {"pull": "sometimes"}, "--launch-pull must be missing, always or never"),
    ],
)
def test_bad_launch_settings_are_one_clear_error(value: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LaunchConfigError, match=None) as error:
        resolve_launch(value, **kwargs)  # type: ignore[arg-type]
    assert message in str(error.value)

"""hf-local, the numeric reference, on a tiny random Llama (and one slow smoke test on SmolLM2)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from hyoka.orchestrator.backends import (
    BackendConfigError,
    BackendRequestError,
    GenerationRequest,
    LoglikelihoodRequest,
    create_backend,
)
from hyoka.orchestrator.backends.hf_local import HFLocalBackend, LocalModel, resolve_model, smollm2_location

PAIRS = [
    ("Question: Which is the capital of Japan? Answer:", " Tokyo"),
    ("Question: Which is the capital of Japan? Answer:", " Kyoto is old"),
    ("富士山は日本で", "一番高い山です。"),
    ("def add(a, b):\n", "    return a + b\n"),
    ("The quick brown", " fox"),
]


@pytest.fixture
def backend(tiny_model_dir: Path) -> HFLocalBackend:
    b = create_backend("hf-local", model=str(tiny_model_dir), batch_size=3)
    assert isinstance(b, HFLocalBackend)
    return b


def reference_logprob(lm: LocalModel, context: str, continuation: str) -> float:
    """Unbatched, unpadded: sum of the prompt's per-token log-probabilities over the continuation."""
    ctx, cont = lm.encode_pair(context, continuation)
    tokens = lm.prompt_logprobs(ctx + cont)
    return math.fsum(t.logprob for t in tokens[len(ctx) :] if t.logprob is not None)


async def test_loglikelihood_batched_equals_unbatched_reference(backend: HFLocalBackend, tiny_lm: LocalModel) -> None:
    results = await backend.loglikelihood([LoglikelihoodRequest(c, x) for c, x in PAIRS])
    for (context, continuation), r in zip(PAIRS, results, strict=True):
        assert r.logprob == pytest.approx(reference_logprob(tiny_lm, context, continuation), abs=1e-5)
        assert r.logprob < 0


async def test_trailing_space_of_the_context_moves_to_the_continuation(backend: HFLocalBackend) -> None:
    a, b = await backend.loglikelihood(
        [LoglikelihoodRequest("The quick brown", " fox"), LoglikelihoodRequest("The quick brown ", "fox")]
    )
    assert a.logprob == b.logprob


def test_continuation_tokens_are_those_after_the_context_tokens(tiny_lm: LocalModel) -> None:
    ctx, cont = tiny_lm.encode_pair("The quick brown", " fox")
    assert ctx + cont == tiny_lm.encode("The quick brown fox")
    assert ctx == tiny_lm.encode("The quick brown")
    # An empty context is conditioned on the prefix token (no BOS here, so EOS), as lm-eval does.
    assert tiny_lm.encode_pair("", "fox") == ([tiny_lm.prefix_token_id], tiny_lm.encode("fox"))
    assert tiny_lm.prefix_token_id == tiny_lm.tokenizer.eos_token_id


def test_is_greedy_is_true_exactly_for_the_greedy_continuation(tiny_lm: LocalModel) -> None:
    ctx = tiny_lm.encode("Question: Which")
    (greedy,) = tiny_lm.generate([ctx], max_new_tokens=4)[0]
    continuation = [t for t in greedy.token_ids if t not in tiny_lm.eos_token_ids]
    other = [*continuation[:-1], (continuation[-1] + 1) % len(tiny_lm.tokenizer)]
    (lp_greedy, is_greedy), (lp_other, is_other) = tiny_lm.score([(ctx, continuation), (ctx, other)])
    assert is_greedy and not is_other
    assert lp_greedy > lp_other


async def test_greedy_generation_is_deterministic_and_batch_independent(backend: HFLocalBackend) -> None:
    contexts = ["Question: Which", "The quick brown fox jumps", "質問：", "def add(a, b):\n    return"]
    batched = await backend.generate_until([GenerationRequest(c, max_new_tokens=12) for c in contexts])
    single = [(await backend.generate_until([GenerationRequest(c, max_new_tokens=12)]))[0] for c in contexts]
    assert batched == single
    assert all(len(o) == 1 and o[0] for o in batched)


async def test_max_new_tokens_and_n_for_greedy(backend: HFLocalBackend, tiny_lm: LocalModel) -> None:
    (out,) = await backend.generate_until([GenerationRequest("The quick", max_new_tokens=5, n=2)])
    assert out[0] == out[1]
    (gen,) = tiny_lm.generate([tiny_lm.encode("The quick")], max_new_tokens=5)[0]
    assert len(gen.token_ids) <= 5 and gen.text == out[0]
    assert await backend.generate_until([GenerationRequest("The quick", max_new_tokens=0)]) == [[""]]


async def test_max_total_tokens_bounds_prompt_plus_generation(backend: HFLocalBackend, tiny_lm: LocalModel) -> None:
    prompt_tokens = len(tiny_lm.encode("The quick"))
    bounded = GenerationRequest("The quick", max_new_tokens=50, max_total_tokens=prompt_tokens + 3)
    sampled = GenerationRequest(
        "The quick", max_new_tokens=50, max_total_tokens=prompt_tokens + 3, temperature=0.7, n=2, seed=1
    )
    three_new = GenerationRequest("The quick", max_new_tokens=3)
    three_sampled = GenerationRequest("The quick", max_new_tokens=3, temperature=0.7, n=2, seed=1)
    assert await backend.generate_until([bounded, sampled]) == await backend.generate_until([three_new, three_sampled])
    no_room = GenerationRequest("The quick", max_new_tokens=50, max_total_tokens=prompt_tokens)
    assert await backend.generate_until([no_room]) == [[""]]


async def test_stop_sequences_cut_the_generated_text(backend: HFLocalBackend) -> None:
    (free,) = await backend.generate_until([GenerationRequest("Question: Which", max_new_tokens=24)])
    text = free[0]
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    assert stop.strip(), f"pick another context: {text!r}"
    (cut,) = await backend.generate_until([GenerationRequest("Question: Which", max_new_tokens=24, stop=(stop,))])
    assert cut == [text[: text.index(stop)]]


def test_stop_in_the_prompt_does_not_stop_generation(tiny_lm: LocalModel) -> None:
    prompt = tiny_lm.encode("Answer: The")
    (free,) = tiny_lm.generate([prompt], max_new_tokens=6)[0]
    (with_stop,) = tiny_lm.generate([prompt], max_new_tokens=6, stop=("Answer",))[0]
    if "Answer" not in free.text:
        assert with_stop.text == free.text and with_stop.finish_reason == "length"


def test_eos_ends_a_sample_and_is_not_in_the_text(tiny_lm: LocalModel) -> None:
    eos = tiny_lm.eos_token_ids[0]
    ids = tiny_lm.encode("ab")
    gen = tiny_lm._finish([*ids, eos, *ids], stop=())
    assert gen.finish_reason == "eos_token" and gen.token_ids == [*ids, eos] and gen.text == "ab"
    assert tiny_lm._finish(ids, stop=("b",)).finish_reason == "stop_sequence"


async def test_sampling_is_reproducible_with_a_seed(backend: HFLocalBackend) -> None:
    def req(seed: int) -> GenerationRequest:
        return GenerationRequest("def", max_new_tokens=8, temperature=1.0, top_p=0.95, n=4, seed=seed)

    (a,), (b,), (c,) = [await backend.generate_until([req(s)]) for s in (1, 1, 2)]
    assert len(a) == 4 and a == b and a != c
    assert len(set(a)) > 1  # T=1 on a peaked-but-random model: samples differ


async def test_event_loop_stays_free_while_the_model_runs(backend: HFLocalBackend) -> None:
    await backend.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await backend.generate_until([GenerationRequest("The quick", max_new_tokens=64, temperature=1.0, n=8, seed=0)])
    task.cancel()
    assert ticks > 3


async def test_capabilities_and_info(backend: HFLocalBackend, tiny_model_dir: Path) -> None:
    caps = backend.capabilities
    assert caps.prompt_logprobs and caps.token_ids_input and caps.max_concurrency == 3
    info = await backend.info()
    assert info.backend == "hf-local" and info.model == str(tiny_model_dir)
    assert int(info.details["parameters"]) < 200_000
    assert backend.capabilities.max_new_tokens_limit == 255


async def test_bad_requests(backend: HFLocalBackend) -> None:
    with pytest.raises(BackendRequestError, match=r"requests\[0\]\.continuation is empty"):
        await backend.loglikelihood([LoglikelihoodRequest("a", "")])
    with pytest.raises(BackendRequestError, match=r"requests\[1\]\.top_p"):
        await backend.generate_until([GenerationRequest("a"), GenerationRequest("b", temperature=1.0, top_p=0.0)])


def test_model_resolution(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder, gguf = smollm2_location()
    assert (folder / gguf).stat().st_size > 50_000_000 and gguf.endswith(".gguf")
    assert resolve_model("smollm2") == (folder, gguf)
    assert resolve_model(str(folder / gguf)) == (folder, gguf)
    assert resolve_model(str(tiny_model_dir)) == (tiny_model_dir, None)
    with pytest.raises(BackendConfigError, match="nothing is downloaded"):
        create_backend("hf-local", model="HuggingFaceTB/SmolLM2-135M")
    with pytest.raises(BackendConfigError, match=r"no config\.json"):
        create_backend("hf-local", model=str(tmp_path))


@pytest.mark.slow
async def test_smollm2_loads_offline_scores_and_generates() -> None:
    b = create_backend("hf-local", model="smollm2")
    await b.start()
    tokyo, paris = await b.loglikelihood(
        [
            LoglikelihoodRequest("The capital of Japan is", " Tokyo"),
            LoglikelihoodRequest("The capital of Japan is", " Paris"),
        ]
    )
    assert tokyo.logprob > paris.logprob and tokyo.is_greedy
    (out,) = await b.generate_until([GenerationRequest("def add(a, b):\n    return", max_new_tokens=8, stop=("\n",))])
    assert "a" in out[0] and "\n" not in out[0]
    info = await b.info()
    assert info.model == "smollm2" and info.details["gguf_file"].endswith(".gguf")


def test_model_generation_defaults_do_not_leak_into_greedy_or_sampled_runs(tiny_lm: LocalModel) -> None:
    """Greedy output is the argmax chain whatever sampling defaults the model's generation_config carries."""
    import torch

    prompt = tiny_lm.encode("The quick brown")
    ids = list(prompt)
    for _ in range(6):
        with torch.inference_mode():
            ids.append(int(tiny_lm.model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    argmax_chain = ids[len(prompt) :]
    config = tiny_lm.model.generation_config
    saved = config.to_dict()
    try:
        config.update(do_sample=True, temperature=0.3, top_p=0.5, top_k=5, repetition_penalty=1.5)
        (greedy,) = tiny_lm.generate([prompt], max_new_tokens=6)[0]
        a = tiny_lm.generate([prompt], max_new_tokens=6, temperature=1.0, n=8, seed=0)[0]
        config.update(do_sample=False, temperature=None, top_p=None, top_k=None, repetition_penalty=None)
        b = tiny_lm.generate([prompt], max_new_tokens=6, temperature=1.0, n=8, seed=0)[0]
    finally:
        config.update(**saved)
    assert greedy.token_ids[: len(argmax_chain)] == argmax_chain[: len(greedy.token_ids)]
    assert [s.token_ids for s in a] == [s.token_ids for s in b]


async def test_threads_option_sets_torch_threads(tiny_model_dir: Path) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        b = create_backend("hf-local", model=str(tiny_model_dir), threads=1)
        assert (await b.info()).details["threads"] == "1"
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


async def test_special_tokens_only_where_the_request_asks(tiny_model_dir: Path, tiny_lm: LocalModel) -> None:
    """bigcode tokenises with the tokenizer's defaults (BOS where it adds one); lm-eval adds none.
    The tiny tokenizer gets a BOS-adding post-processor, as Llama's has."""
    import copy

    from tokenizers.processors import TemplateProcessing

    tokenizer = copy.deepcopy(tiny_lm.tokenizer)
    bos = tokenizer.eos_token_id  # any special token will do as the prefix
    tokenizer._tokenizer.post_processor = TemplateProcessing(
        single=f"{tokenizer.eos_token} $A", special_tokens=[(tokenizer.eos_token, bos)]
    )
    lm = LocalModel("tiny-bos", tokenizer, tiny_lm.model)
    assert lm.encode("The quick", special_tokens=True) == [bos, *lm.encode("The quick")]
    assert lm.encode("The quick")[0] != bos

    backend = create_backend("hf-local", model=str(tiny_model_dir), batch_size=2)
    assert isinstance(backend, HFLocalBackend)
    backend._model = lm  # the loaded model, with the BOS-adding tokenizer
    plain = GenerationRequest("The quick", max_new_tokens=4)
    with_bos = GenerationRequest("The quick", max_new_tokens=4, add_special_tokens=True)
    expected = [s.text for s in lm.generate([[bos, *lm.encode("The quick")]], max_new_tokens=4)[0]]
    without = [s.text for s in lm.generate([lm.encode("The quick")], max_new_tokens=4)[0]]
    assert expected != without  # so the two requests below tell the encodings apart
    assert await backend.generate_until([with_bos]) == [expected]
    assert await backend.generate_until([plain]) == [
        [s.text for s in lm.generate([lm.encode("The quick")], max_new_tokens=4)[0]]
    ]

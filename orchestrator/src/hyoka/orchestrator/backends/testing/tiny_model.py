"""A tiny random Llama with a byte-level BPE tokenizer, built offline in well under a second.

Good for tests of everything that needs *a* real causal LM (hf-local, the protocol servers, the run
engine) without the 50 s SmolLM2 load. The tokenizer is trained on a few sentences of English,
Japanese and Python, with byte fallback (byte-level BPE) so every string encodes; it adds no BOS,
like SmolLM2's. Weights are drawn with a wide initialiser so next-token distributions are peaked
and greedy decoding does not hinge on rounding.
"""

from __future__ import annotations

from pathlib import Path

EOS = "<|endoftext|>"
PAD = "<|pad|>"
SPECIAL = "<file_sep>"  # a special token that is also a HumanEval stop sequence

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

_CORPUS = [
    "Question: Which is the capital of Japan? Answer: Tokyo is the capital of Japan.",
    "The quick brown fox jumps over the lazy dog. The dog sleeps in the sun.",
    "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n",
    "質問：日本の首都はどこですか？\n回答：東京です。\n\n",
    "富士山は日本で一番高い山です。京都には多くの寺があります。",
    "Q: 12 + 30 = ? A: The answer is 42.\n",
]


def build_tiny_llama(folder: Path, *, seed: int = 0, vocab_size: int = 384) -> Path:
    """Write a tiny Llama (config, safetensors weights, tokenizer) to `folder` and return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD, SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe, eos_token=EOS, pad_token=PAD, additional_special_tokens=[SPECIAL]
    )

    # A minimal chat template so that chat endpoints (openai-chat) can be served from this model too.
    tokenizer.chat_template = CHAT_TEMPLATE

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=0.5,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder

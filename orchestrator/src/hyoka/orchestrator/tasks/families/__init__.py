"""Loaders and builders per harness family. Importing this package registers every hook; the
task registry does so before it validates the definitions."""

from hyoka.orchestrator.tasks.families import bigcode, jp_fork, llm_jp_eval, lm_eval_gen, lm_eval_mc

__all__ = ["bigcode", "jp_fork", "llm_jp_eval", "lm_eval_gen", "lm_eval_mc"]

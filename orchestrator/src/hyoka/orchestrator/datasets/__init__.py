"""The dataset layer: where each benchmark file comes from (`manifest.toml`), how it is fetched
and verified into a data directory (`hyoka data pull`), and what a data directory holds
(`hyoka data list` / `verify`).

A data directory has the layout of the offline copy in `../shared/datasets` (`<folder>/<relpath>`),
so the task loaders read a pulled cache and the offline copy alike.
"""

"""Files produced from a downloaded source rather than downloaded themselves: members of a tar
archive (MMLU's data.tar), and the MGSM few-shot exemplars, which upstream ships only as Python
literals in `mgsm/exemplars.py` and which are written out here as JSON Lines, byte for byte as in
the offline copy (the manifest's sha256 checks the result).

Nothing here executes downloaded code: the exemplars file is parsed with `ast` and its values
are read with `ast.literal_eval`; tar members are read by name, never extracted by tar paths.
"""

from __future__ import annotations

import ast
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


class DeriveError(ValueError):
    pass


def _tar_members(source: Path, targets: dict[str, Path]) -> dict[str, str]:
    """One pass over the archive, writing each wanted member to its destination."""
    errors: dict[str, str] = {}
    done: set[str] = set()
    with tarfile.open(source, "r:*") as archive:
        for info in archive:
            name = info.name.removeprefix("./")
            if name not in targets or name in done:
                continue
            done.add(name)
            stream = archive.extractfile(info) if info.isfile() else None
            if stream is None:
                errors[name] = "not a regular file in the archive"
                continue
            with stream, targets[name].open("wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
    errors.update({name: "not in the archive" for name in targets if name not in done})
    return errors


def _literals(source_text: str) -> dict[str, Any]:
    """Top-level `NAME = <literal>` assignments of a Python file."""
    values: dict[str, Any] = {}
    for node in ast.parse(source_text).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def mgsm_exemplars_jsonl(source_text: str, lang: str) -> bytes:
    """The 8 exemplars of one language in upstream order: one JSON object per line with the keys
    exemplar, question (upstream `q`), answer (`a`), answer_number and equation_solution."""
    values = _literals(source_text)
    try:
        exemplars = values["MGSM_EXEMPLARS"][lang]
        numbers = values["EXEMPLAR_NUMBER_ANSWERS"]
        equations = values["EXEMPLAR_EQUATION_SOLUTIONS"]
        lines = [
            json.dumps(
                {
                    "exemplar": int(key),
                    "question": exemplars[key]["q"],
                    "answer": exemplars[key]["a"],
                    "answer_number": numbers[i],
                    "equation_solution": equations[i],
                },
                ensure_ascii=False,
            )
            for i, key in enumerate(sorted(exemplars, key=int))
        ]
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise DeriveError(f"no MGSM exemplars for {lang!r} ({type(e).__name__}: {e})") from e
    return ("\n".join(lines) + "\n").encode("utf-8")


def _mgsm_members(source: Path, targets: dict[str, Path]) -> dict[str, str]:
    text = source.read_text(encoding="utf-8")
    errors: dict[str, str] = {}
    for lang, dest in targets.items():
        try:
            dest.write_bytes(mgsm_exemplars_jsonl(text, lang))
        except DeriveError as e:
            errors[lang] = str(e)
    return errors


#: Source kind (manifest `sources.*.kind`) -> writes each wanted member to its destination and
#: returns {member: why it could not} for those it could not produce.
PRODUCERS: dict[str, Callable[[Path, dict[str, Path]], dict[str, str]]] = {
    "tar": _tar_members,
    "mgsm-exemplars": _mgsm_members,
}


def produce(kind: str, source: Path, targets: dict[str, Path]) -> dict[str, str]:
    try:
        producer = PRODUCERS[kind]
    except KeyError:
        raise DeriveError(f"unknown source kind {kind!r}") from None
    try:
        return producer(source, targets)
    except (tarfile.TarError, SyntaxError, UnicodeDecodeError) as e:
        raise DeriveError(f"cannot read the source file ({type(e).__name__}: {e})") from e

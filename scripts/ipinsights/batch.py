"""Batch scorer for the pipeline's transform step: each input CSV `entity,ip` file -> `<file>.out`, one JSON line
`{"dot_product": x}` per input row, as the built-in's batch transform writes with Accept application/jsonlines.

    python -m scripts.ipinsights.batch --model-dir DIR --input DIR_OR_FILE --output DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.ipinsights.data import channel_files, read_file
from scripts.ipinsights.scoring import RequestError, Scorer, Scores, render_response

CHUNK_ROWS = 100_000


def score_file(scorer: Scorer, source: Path, target: Path) -> int:
    """Score every row of one file in chunks; returns the rows written."""
    pairs = read_file(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        for start in range(0, len(pairs.entities), CHUNK_ROWS):
            try:
                scores: Scores = scorer.score(
                    pairs.entities[start : start + CHUNK_ROWS], pairs.ips[start : start + CHUNK_ROWS]
                )
            except RequestError as error:
                message = f"{source}: {error} (rows counted from {start + 1})"
                raise ValueError(message) from None
            handle.write(render_response(scores, "application/jsonlines"))
    return len(pairs.entities)


def run(model_dir: Path, source: Path, output: Path) -> dict[str, int]:
    scorer = Scorer.from_model_dir(model_dir)
    files = [source] if source.is_file() else channel_files(source)
    written = {}
    for path in files:
        relative = path.name if source.is_file() else str(path.relative_to(source))
        written[relative] = score_file(scorer, path, output / f"{relative}.out")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    arguments = parser.parse_args(argv)
    for name, rows in run(arguments.model_dir, arguments.input, arguments.output).items():
        print(f"{name}: {rows:,} rows scored")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

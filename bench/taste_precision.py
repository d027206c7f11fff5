"""Free-text tastes alone, on demo-data indexes: the share of each answer's top 10 in the genre
the taste names.

A new user who only says "I love jazz" is served by the sentence embedding of that phrase,
projected by the user tower's text projection, in retrieval order (the learned ranker does not
re-order requests without a history since f655242; numbers measured before that went through
it, and moved with it from build to build). A change to the model that moves genre out of the
text (for example, catalog columns on the query side) shows here first. Four phrasings for
each of the demo data's genres; every index is asked the same requests, side by side:

    python bench/taste_precision.py --data .demo/data --index A/ --index B/
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tastebud.embed.encoder import SentenceTransformerEncoder
from tastebud.evaluate.runner import open_for_eval
from tastebud.ingest.readers import load_dataset
from tastebud.server.domain import RecommendQuery

PHRASES = ("I love {genre}", "{genre} please", "something {genre}, slow and moody", "the best {genre} there is")
K = 10


def taste_precision(index: Path, genres_of: dict[str, tuple[str, ...]], genres: list[str],
                    encoder: SentenceTransformerEncoder) -> float:
    with ThreadPoolExecutor(2) as executor:
        recommender = open_for_eval(index, encoder, executor)

        async def run() -> list[float]:
            shares = []
            for genre in genres:
                for phrase in PHRASES:
                    result = await recommender.recommend(
                        RecommendQuery(user_id="", k=K, taste=phrase.format(genre=genre.lower())))
                    shares.append(float(np.mean([genre in genres_of[i.item_id] for i in result.items])))
            return shares
        return float(np.mean(asyncio.run(run())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a demo data folder (items.csv, interactions.csv)")
    parser.add_argument("--index", type=Path, action="append", required=True, help="an index root (repeatable)")
    args = parser.parse_args(argv)
    dataset = load_dataset(args.data / "items.csv", args.data / "interactions.csv")
    genres_of = dict(zip(dataset.catalog.item_ids, dataset.catalog.attributes["genres"]))
    genres = sorted({g for values in genres_of.values() for g in values})
    encoder = SentenceTransformerEncoder()
    for index in args.index:
        share = taste_precision(index, genres_of, genres, encoder)
        print(f"{index}: taste precision@{K} {share:.3f} ({len(genres) * len(PHRASES)} requests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

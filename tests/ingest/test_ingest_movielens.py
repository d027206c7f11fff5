"""MovieLens loaders: the real 100K folder when present, tiny synthetic folders of each layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastebud.errors import InvalidInputError
from tastebud.ingest import load_movielens
from tastebud.ingest.movielens import ML100K_GENRES, split_title

from shared_data import ML100K


@pytest.mark.movielens
@pytest.mark.skipif(not (ML100K / "u.data").is_file(), reason=f"MovieLens 100K folder absent: {ML100K}")
def test_real_100k() -> None:
    dataset = load_movielens(ML100K)
    catalog, log = dataset.catalog, dataset.interactions
    assert (len(log), len(set(log.user_ids.tolist())), len(catalog)) == (100_000, 943, 1682)
    assert dataset.report.summary() == "1682 items, 100000 interactions"
    assert catalog.item_ids[:3] == ["1", "2", "3"]
    assert catalog.titles[0] == "Toy Story" and catalog.years[0] == 1995
    assert catalog.texts[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    index = catalog.item_ids.index("543")
    assert catalog.titles[index] == "Misérables, Les" and catalog.years[index] == 1995
    assert sum(any(ord(c) > 127 for c in t) for t in catalog.titles) == 9
    assert all(catalog.attributes["genres"]) and set(catalog.attributes) == {"genres"}
    assert sum(y is None for y in catalog.years) == 1  # only "unknown" (item 267) has no date
    assert set(log.events.tolist()) == {"rating"} and np.all(log.weights == 1.0)
    assert set(np.unique(log.ratings).tolist()) == {1, 2, 3, 4, 5}
    first = np.flatnonzero((log.user_ids == "196") & (log.item_ids == "242"))
    assert log.timestamps[first].tolist() == [881250949.0] and log.ratings[first].tolist() == [3.0]


def _write_100k(folder: Path, *, with_genres: bool = True) -> Path:
    folder.mkdir()
    flags = ["0"] * 19
    drama = flags.copy()
    drama[8] = "1"
    items = [
        "1|Toy Story (1995)|01-Jan-1995||http://x|"
        + "|".join(["0", "0", "0", "1", "1", "1"] + ["0"] * 13),
        "2|Misérables, Les (1995)|01-Jan-1995||http://x|" + "|".join(drama),
        "3|Untitled|04-Feb-1971||http://x|" + "|".join(flags),
    ]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (folder / "u.data").write_text("10\t1\t4\t881250949\n10\t2\t5\t881250000\n7\t3\t1\t881000000\n")
    if with_genres:
        names = ML100K_GENRES
        (folder / "u.genre").write_text("".join(f"{n}|{i}\n" for i, n in enumerate(names)) + "\n")
    return folder


@pytest.mark.parametrize("with_genres", [True, False])
def test_synthetic_100k(tmp_path: Path, with_genres: bool) -> None:
    dataset = load_movielens(_write_100k(tmp_path / "ml", with_genres=with_genres))
    catalog = dataset.catalog
    assert catalog.titles == ["Toy Story", "Misérables, Les", "Untitled"]
    assert catalog.years == [1995, 1995, 1971]  # the last from its release date
    assert catalog.attributes["genres"] == [("Animation", "Children's", "Comedy"), ("Drama",), ()]
    assert catalog.texts[2] == "Untitled (1971)."
    assert dataset.interactions.user_ids.tolist() == ["10", "10", "7"]
    assert dataset.interactions.item_ids.tolist() == ["2", "1", "3"]  # by time within a user


def test_100k_unknown_item_and_bad_rating_name_the_line(tmp_path: Path) -> None:
    folder = _write_100k(tmp_path / "ml")
    (folder / "u.data").write_text("10\t1\t4\t881250949\n10\t9\t5\t881250000\n")
    with pytest.raises(InvalidInputError, match=r"u\.data, line 2: unknown item id '9'"):
        load_movielens(folder)
    (folder / "u.data").write_text("10\t1\t4\t881250949\n10\t2\tx\t881250000\n")
    with pytest.raises(
        InvalidInputError, match=r"u\.data, line 2: rating 'x' is not a finite number"
    ):
        load_movielens(folder)


def _write_latest(folder: Path) -> Path:
    folder.mkdir()
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '11,"American President, The (1995)",Comedy|Drama|Romance\n'
        "99,Babylon 5 (1994) ,(no genres listed)\n"
        "100,Fawlty Towers (1975-1979),Comedy\n"
        "200,Shoah,Documentary\n",
        encoding="utf-8",
    )
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,11,4.5,964981247\n2,200,0.5,1445714835\n",
        encoding="utf-8",
    )
    tags = ["pixar", "Pixar", "fun", "PIXAR", "fun", "toys"] + [f"tag{i:02d}" for i in range(12)]
    (folder / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n"
        + "".join(f"2,1,{t},1445714994\n" for t in tags)
        + '3,11,"politics, satire",1445714996\n',
        encoding="utf-8",
    )
    return folder


def test_synthetic_latest(tmp_path: Path) -> None:
    dataset = load_movielens(_write_latest(tmp_path / "ml-latest-small"))
    catalog, log = dataset.catalog, dataset.interactions
    assert catalog.item_ids == ["1", "11", "99", "100", "200"]
    assert catalog.titles == [
        "Toy Story",
        "American President, The",
        "Babylon 5",
        "Fawlty Towers",
        "Shoah",
    ]
    assert catalog.years == [1995, 1995, 1994, 1975, None]
    assert catalog.attributes["genres"][2] == ()
    tags = catalog.attributes["tags"]
    assert tags[0][:3] == ("pixar", "fun", "tag00") and len(tags[0]) == 10
    assert tags[1] == ("politics, satire",) and tags[2] == ()
    assert catalog.texts[1] == (
        "American President, The (1995). Genres: Comedy, Drama, Romance. Tags: politics, satire."
    )
    assert catalog.texts[4] == "Shoah. Genres: Documentary."
    assert log.item_ids.tolist() == ["11", "1", "200"] and log.ratings.tolist() == [4.5, 4.0, 0.5]
    assert dataset.report.interactions_read == 3


def test_latest_without_tags(tmp_path: Path) -> None:
    folder = _write_latest(tmp_path / "ml")
    (folder / "tags.csv").unlink()
    catalog = load_movielens(folder).catalog
    assert set(catalog.attributes) == {"genres"}
    assert (
        catalog.texts[0]
        == "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy."
    )


def test_latest_unknown_movie_in_ratings_and_tags(tmp_path: Path) -> None:
    folder = _write_latest(tmp_path / "ml")
    with (folder / "ratings.csv").open("a") as f:
        f.write("3,5,3.0,964982703\n")
    with pytest.raises(InvalidInputError, match=r"ratings\.csv, line 5: unknown item id '5'"):
        load_movielens(folder)
    with (folder / "tags.csv").open("a") as f:
        f.write("3,77,oops,1445714996\n")
    with pytest.raises(InvalidInputError, match=r"tags\.csv, line 21: unknown movieId '77'"):
        load_movielens(folder)


def test_folder_with_neither_layout(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidInputError, match=r"u\.data and u\.item .* movies\.csv and ratings\.csv"
    ):
        load_movielens(tmp_path)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Toy Story (1995)", ("Toy Story", 1995)),
        ("Babylon 5 (1994) ", ("Babylon 5", 1994)),
        (
            "Wings of Desire (Himmel über Berlin) (1987)",
            ("Wings of Desire (Himmel über Berlin)", 1987),
        ),
        ("Shoah", ("Shoah", None)),
        ("(1995)", ("(1995)", None)),
        ("1984 (1984)", ("1984", 1984)),
    ],
)
def test_split_title(raw: str, expected: tuple[str, int | None]) -> None:
    assert split_title(raw) == expected

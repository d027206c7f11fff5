"""Template rendering: values, multi-valued joins, and the tidy-up around empty values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tastebud.errors import InvalidInputError
from tastebud.ingest.template import Template, render_text

TEMPLATE = "{title} ({year}). Genres: {genres}. {description}"


def test_full_row_renders_every_value() -> None:
    row = {
        "title": "Toy Story",
        "year": 1995,
        "genres": ("Animation", "Comedy"),
        "description": "Toys come alive.",
    }
    assert (
        render_text(TEMPLATE, row)
        == "Toy Story (1995). Genres: Animation, Comedy. Toys come alive."
    )


def test_multi_valued_joined_with_commas_and_blanks_dropped() -> None:
    assert render_text("Tags: {tags}.", {"tags": ["a", "", "b c"]}) == "Tags: a, b c."


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"title": "Toy Story", "genres": ("Animation",)}, "Toy Story. Genres: Animation."),
        ({"title": "Toy Story", "year": 1995}, "Toy Story (1995)."),
        (
            {"title": "Toy Story", "year": "", "genres": (), "description": "Fun."},
            "Toy Story. Fun.",
        ),
        ({"title": "Toy Story"}, "Toy Story."),
        ({"genres": ("Drama",), "description": "Sad."}, "Genres: Drama. Sad."),
    ],
)
def test_empty_values_leave_no_debris(row: dict, expected: str) -> None:
    assert render_text(TEMPLATE, row) == expected


@pytest.mark.parametrize(
    ("template", "row", "expected"),
    [
        ("{title}: {description}", {"title": "T"}, "T"),
        ("{title}, {year}.", {"title": "T"}, "T."),
        ("{title} [{x}] and more", {"title": "T"}, "T and more"),
        ("Cast: {a}, {b}. End", {"a": "A"}, "Cast: A. End"),
        ("{title}  {{literal}}", {"title": "T"}, "T {literal}"),
        ("{title}\n\n{description}", {"title": "T", "description": "two  spaces"}, "T two spaces"),
    ],
)
def test_tidy_rules(template: str, row: dict, expected: str) -> None:
    assert render_text(template, row) == expected


def test_tidy_never_edits_inside_a_value() -> None:
    assert render_text("{a}", {"a": "Rock () . . Genres: ."}) == "Rock () . . Genres: ."


def test_fields_and_unknown_placeholder_names_it() -> None:
    template = Template.parse("{title} by {director} ({title})")
    assert template.fields == ("title", "director")
    with pytest.raises(InvalidInputError, match=r"items\.csv.*\{director\} is not a column"):
        template.check_columns(["item_id", "title"], source="items.csv")


@pytest.mark.parametrize("bad", ["{title:>10}", "{title!r}", "{}", "{a.b}", "{a[0]}", "{title"])
def test_malformed_templates_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        Template.parse(bad)


_word = st.text(alphabet="abcdefghij", min_size=1, max_size=6)


@given(
    title=_word,
    year=st.one_of(st.none(), st.integers(1900, 2030)),
    genres=st.lists(_word, max_size=3),
    description=st.one_of(st.none(), _word),
)
def test_default_template_output_is_always_tidy(
    title: str, year: int | None, genres: list[str], description: str | None
) -> None:
    row = {"title": title, "year": year, "genres": genres, "description": description}
    text = render_text(TEMPLATE, row)
    assert text.startswith(title)
    for debris in ("()", ": .", "..", "  ", " .", "Genres: ."):
        assert debris not in text
    assert text == text.strip()
    assert ("Genres:" in text) == bool(genres)

"""The one walker over an edition's Markdown texts and the one label of a place (compose/model.py)."""

from __future__ import annotations

from pathlib import Path

from newsletter_cli.compose.load import load, parse_yaml, read_text
from newsletter_cli.compose.model import iter_texts, where

EXAMPLE = Path(__file__).resolve().parent.parent / "editions" / "2025-09" / "edition.yaml"


def test_the_raw_data_and_the_validated_edition_give_the_same_texts() -> None:
    """The loader walks the YAML before validation, render and check walk the model: the same fields."""
    raw, _, _ = parse_yaml(read_text(EXAMPLE, "edition.yaml"), "edition.yaml")
    edition = load(EXAMPLE).edition
    from_raw, from_model = list(iter_texts(raw)), list(iter_texts(edition))
    assert from_raw == from_model
    fields = [text.field for text in from_model]
    assert fields[0] == ("intro", "body")
    assert any(field[-1] == "body" and field[0] == "sections" for field in fields)
    item = next(text for text in from_model if len(text.field) == 5)
    assert item.place == f'item "{edition.sections[item.field[1]].items[item.field[3]].title}"'


def test_empty_and_missing_fields_are_left_out_and_bad_shapes_do_not_crash() -> None:
    data = {"intro": {"body": "Beste lezer", "signature": ""},
            "sections": [{"title": "A", "items": [{"title": "x", "body": ""}, {"body": "Zonder titel"}]},
                         "not a section", {"intro": 2025}]}
    texts = list(iter_texts(data))
    assert [(t.field, t.text, t.place) for t in texts] == [
        (("intro", "body"), "Beste lezer", "intro"),
        (("sections", 0, "items", 1, "body"), "Zonder titel", "item 2 of section 1"),
    ]


def test_where_names_items_sections_intro_and_agenda() -> None:
    data = {"sections": [{"title": "Nieuws", "items": [{"title": "Congres"}]}]}
    assert where(data, ("sections", 0, "items", 0, "body")) == 'item "Congres"'
    assert where(data, ("sections", 0, "title")) == 'section "Nieuws"'
    assert where(data, ("agenda", "rows", 0)) == "agenda"
    assert where(data, ("subject",)) == ""

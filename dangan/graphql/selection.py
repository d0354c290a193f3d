"""Reading a resolver's selection set, so list queries fetch only the columns asked for."""

from __future__ import annotations

from collections.abc import Iterable

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection


def _fields(selections: Iterable[Selection]) -> Iterable[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections)


def child_names(selections: Iterable[Selection], path: tuple[str, ...]) -> set[str]:
    """Names of the fields selected under ``path`` (e.g. ``("edges", "node")``)."""
    level = list(_fields(selections))
    for name in path:
        level = [
            child for field in level if field.name == name for child in _fields(field.selections)
        ]
    return {field.name for field in level}


def is_selected(selections: Iterable[Selection], name: str) -> bool:
    return any(field.name == name for field in _fields(selections))

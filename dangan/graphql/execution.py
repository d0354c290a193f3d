"""Execution: plain leaf fields completed in bulk, and redactions recorded.

graphql-core completes every field value on its own: a path, a resolve-info object, the
resolver call, the result checks — about 3 µs per value, so 30 ms for a page of 1,000
customers with 10 fields (FINDINGS.md). Most of those fields are plain attributes of a
row object (no arguments, no resolver of ours, a scalar or enum type), and for them all
that machinery computes ``type.coerce_output_value(getattr(row, name))``.

This executor plans each selection set once per request: fields of that kind are read
and coerced directly, everything else (resolvers, objects, lists, ``null`` in a
non-null field, which must raise the usual error) takes graphql-core's own path. The
result is the same document; tests compare both executors on the same queries.

It is also where hidden fields are reported: an object that carries ``redacted`` (the
Python names of fields the policy hid) gets each selected one's response path added to
the request's ``redacted`` list, which the endpoint returns as ``extensions.redacted``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

_BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF


class _Field(NamedTuple):
    response_name: str
    python_name: str | None  # None for __typename
    leaf_type: Any  # set only for plain leaves, completed here
    non_null: bool


def _plan_field(parent_type: GraphQLObjectType, field_details_list: Any) -> _Field:
    node = field_details_list[0].node
    name = node.name.value
    response_name = node.alias.value if node.alias else name
    if name == "__typename":
        return _Field(response_name, None, "__typename", True)
    field = parent_type.fields.get(name)
    definition = (field.extensions or {}).get(_BACKREF) if field else None
    python_name = getattr(definition, "python_name", None)
    plain = _Field(response_name, python_name, None, False)
    if field is None or definition is None or field.args or node.arguments or node.directives:
        return plain
    return_type, non_null = field.type, False
    if isinstance(return_type, GraphQLNonNull):
        return_type, non_null = return_type.of_type, True
    if not isinstance(return_type, GraphQLScalarType | GraphQLEnumType):
        return plain
    if definition.base_resolver is not None or definition.extensions:
        return plain
    if getattr(definition, "permission_classes", None):
        return plain
    return _Field(response_name, python_name, return_type, non_null)


class BulkLeafExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor with plain leaf fields completed without per-field machinery."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # id(grouped field set) → (the set, kept alive so its id stays unique; its plan)
        self._plans: dict[int, tuple[Any, list[_Field]]] = {}

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[_Field]:
        cached = self._plans.get(id(grouped_field_set))
        if cached is not None and cached[0] is grouped_field_set:
            return cached[1]
        plan = [_plan_field(parent_type, fields) for fields in grouped_field_set.values()]
        self._plans[id(grouped_field_set)] = (grouped_field_set, plan)
        return plan

    def _record_redactions(self, source: Any, path: Any, plan: list[_Field]) -> None:
        redacted = getattr(source, "redacted", None)
        if not redacted:
            return
        sink = getattr(self.context_value, "redacted", None)
        if sink is None:
            return
        prefix = ".".join(str(key) for key in path.as_list()) if path else ""
        for field in plan:
            if field.python_name in redacted:
                sink.append(f"{prefix}.{field.response_name}" if prefix else field.response_name)

    def complete_iterable_value(
        self,
        item_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        items: Any,
        position_context: Any,
    ) -> Any:
        """A list of plain objects whose selected fields are all plain leaves (say,
        ``nodes { id name phone }``) is built in one loop; anything else — resolvers,
        redactions, a null in a non-null field, deferred fields — goes the usual way."""
        fast = self._plain_list(item_type, field_details_list, items, position_context)
        if fast is not None:
            return fast
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def _plain_list(
        self, item_type: Any, field_details_list: Any, items: Any, position_context: Any
    ) -> list[dict[str, Any]] | None:
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if not (isinstance(object_type, GraphQLObjectType) and isinstance(items, list) and items):
            return None
        if position_context is not None:
            return None
        definition = (object_type.extensions or {}).get(_BACKREF)
        origin = getattr(definition, "origin", None)
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(
            object_type, field_details_list
        )
        if origin is None or new_defer_usages:
            return None
        plan = self._plan(object_type, grouped_field_set)
        if not all(field.leaf_type is not None for field in plan):
            return None
        type_name = object_type.name
        completed = []
        for item in items:
            if type(item) is not origin or getattr(item, "redacted", None):
                return None
            values: dict[str, Any] = {}
            for field in plan:
                if field.python_name is None:
                    values[field.response_name] = type_name
                    continue
                value = getattr(item, field.python_name, None)
                if value is None:
                    if field.non_null:
                        return None
                    values[field.response_name] = None
                else:
                    values[field.response_name] = field.leaf_type.coerce_output_value(value)
            completed.append(values)
        return completed

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan(parent_type, grouped_field_set)
        self._record_redactions(source_value, path, plan)
        if not any(field.leaf_type is not None for field in plan):
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        for field, (response_name, fields) in zip(plan, grouped_field_set.items(), strict=True):
            if field.leaf_type is None:
                rest[response_name] = fields
                continue
            if field.python_name is None:
                results[response_name] = parent_type.name
                continue
            value = getattr(source_value, field.python_name, None)
            if value is None:
                if field.non_null:
                    rest[response_name] = fields  # let graphql-core raise its error
                else:
                    results[response_name] = None
                continue
            results[response_name] = field.leaf_type.coerce_output_value(value)
        if not rest:
            return results
        others = super().execute_fields(parent_type, source_value, path, rest, position_context)
        if self.is_awaitable(others):

            async def merged() -> dict[str, Any]:
                return _in_order(grouped_field_set, results, await others)

            return merged()
        return _in_order(grouped_field_set, results, others)


def _in_order(grouped_field_set: Any, first: dict[str, Any], second: Any) -> dict[str, Any]:
    """Responses keep the order of the selection set (GraphQL spec, "Ordered maps")."""
    merged = {**first, **second}
    return {name: merged[name] for name in grouped_field_set if name in merged}

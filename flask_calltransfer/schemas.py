"""Fast loading with marshmallow schemas.

The platforms describe their payloads with marshmallow schemas, and marshmallow's messages name
every bad field. On the hot path, though, ``Schema.load`` costs far more than the JSON parse of a
small payload. :class:`FastLoader` compiles a schema into a plan of plain type checks that returns
exactly what ``schema.load`` would for a valid payload; at the first thing it is not sure of, it
hands the payload to ``schema.load`` itself, which produces the result or the error messages.
"""

from __future__ import annotations

import typing as t

from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow.utils import missing  # type: ignore[attr-defined]

#: Returned by a plan step that cannot decide: the whole payload then goes to ``schema.load``.
_UNSURE = object()
_ABSENT = object()

Step = t.Callable[[t.Any], t.Any]


def _string(value: t.Any) -> t.Any:
    return value if type(value) is str else _UNSURE


def _string_step(field: fields.Field[t.Any]) -> Step:
    validators = tuple(field.validators)
    if not validators:
        return _string

    def step(value: t.Any) -> t.Any:
        if type(value) is not str:
            return _UNSURE
        for validator in validators:
            try:
                validator(value)
            except ValidationError:
                return _UNSURE
        return value

    return step


def _field_step(field: fields.Field[t.Any], name: str) -> Step:
    # Other field types keep their own deserialization, minus the schema's machinery around it.
    # Without validators, the field's own _deserialize is all that deserialize would add to the
    # None and missing handling the plan does itself.
    convert = field.deserialize if field.validators else field._deserialize  # noqa: SLF001

    def step(value: t.Any) -> t.Any:
        try:
            return convert(value, name, None)
        except ValidationError:
            return _UNSURE

    return step


def _any_dict(value: t.Any) -> t.Any:
    # What fields.Dict() without key or value fields loads: a copy of the dict.
    return dict(value) if type(value) is dict else _UNSURE


def _raw_list(value: t.Any) -> t.Any:
    # What fields.List(fields.Raw()) loads: a copy of the list; a None item is marshmallow's to
    # refuse ("Field may not be null").
    return list(value) if type(value) is list and None not in value else _UNSURE


def _container_step(field: fields.Field[t.Any]) -> Step | None:
    """A fast step for a plain dict or list of anything, or ``None`` for marshmallow's own."""
    if field.validators:
        return None
    if type(field) is fields.Dict and field.key_field is None and field.value_field is None:
        return _any_dict
    inner = getattr(field, "inner", None)
    if type(field) is fields.List and type(inner) is fields.Raw and not inner.validators:
        return None if inner.allow_none else _raw_list
    return None


def _plan(schema: Schema) -> list[tuple[str, str, bool, bool, Step]] | None:
    """``(data key, attribute, required, allow_none, step)`` per field, or ``None`` when the
    schema uses something the plan does not model (hooks, defaults, other ``unknown`` modes)."""
    if schema.unknown != EXCLUDE or any(schema._hooks.values()) or schema.many:  # noqa: SLF001
        return None
    plan = []
    for attribute, field in schema.load_fields.items():
        if field.load_default is not missing:
            return None
        step: Step | None
        if type(field) is fields.String:
            step = _string_step(field)
        elif type(field) is fields.Nested and not field.many and isinstance(field.nested, type):
            nested = FastLoader(field.nested())
            if nested.plan is None:
                return None
            step = nested.check
        else:
            step = _container_step(field) or _field_step(field, attribute)
        plan.append((field.data_key or attribute, attribute, field.required, field.allow_none, step))
    return plan


def _compile(plan: list[tuple[str, str, bool, bool, Step]]) -> Step:
    """The plan as one Python function: a plain string check inlined, every other step called,
    each key and attribute passed in by name, never written into the source."""
    names: dict[str, t.Any] = {"UNSURE": _UNSURE, "ABSENT": _ABSENT}
    lines = ["def check(data):", "    if type(data) is not dict:", "        return UNSURE", "    result = {}"]
    for index, (key, attribute, required, allow_none, step) in enumerate(plan):
        names[f"key{index}"], names[f"attribute{index}"], names[f"step{index}"] = key, attribute, step
        lines += [
            f"    value = data.get(key{index}, ABSENT)",
            "    if value is ABSENT:",
            "        " + ("return UNSURE" if required else "pass"),
            "    elif value is None:",
            "        " + (f"result[attribute{index}] = None" if allow_none else "return UNSURE"),
            "    else:",
        ]
        if step is _string:
            lines += ["        if type(value) is not str:", "            return UNSURE"]
        else:
            lines += [
                f"        value = step{index}(value)",
                "        if value is UNSURE:",
                "            return UNSURE",
            ]
        lines.append(f"        result[attribute{index}] = value")
    lines.append("    return result")
    # Built from the schema alone: no payload value is ever part of the source.
    exec(compile("\n".join(lines), "<FastLoader plan>", "exec"), names)
    return t.cast(Step, names["check"])


def _unsure(data: t.Any) -> t.Any:
    return _UNSURE


class FastLoader:
    """``load(data)`` gives what ``schema.load(data)`` gives, without its cost for valid data.

    :param schema: a schema instance, built once at import time.
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.plan = _plan(schema)
        #: The loaded data, or the marker for "unsure" (used by enclosing plans).
        self.check: Step = _compile(self.plan) if self.plan is not None else _unsure

    def load(self, data: t.Any) -> dict[str, t.Any]:
        """Load ``data``; raises marshmallow's :class:`~marshmallow.ValidationError` if invalid."""
        # Annotated, not cast: typing.cast is a call of its own, and this runs on every webhook.
        result: dict[str, t.Any] = self.check(data)
        if result is _UNSURE:
            loaded: dict[str, t.Any] = self.schema.load(data)
            return loaded
        return result


class FastDumper:
    """``dump(obj)`` gives what ``schema.dump(obj)`` gives for flat schemas of strings and
    constants, at the cost of a dict comprehension; anything else goes to ``schema.dump``.

    :param schema: a schema instance, built once at import time.
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.plan: list[tuple[str, str, t.Any]] | None = []
        if any(schema._hooks.values()) or schema.many:  # noqa: SLF001
            self.plan = None
            return
        for attribute, field in schema.dump_fields.items():
            key = field.data_key or attribute
            if type(field) is fields.Constant:
                self.plan.append((key, attribute, field.constant))
            elif type(field) is fields.String and field.attribute is None:
                self.plan.append((key, attribute, _UNSURE))
            else:
                self.plan = None
                return

    def dump(self, obj: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """Dump a mapping; the result is a new dict."""
        if self.plan is None:
            return t.cast(dict[str, t.Any], self.schema.dump(obj))
        result: dict[str, t.Any] = {}
        for key, attribute, constant in self.plan:
            if constant is not _UNSURE:
                result[key] = constant
            elif attribute in obj:
                value = obj[attribute]
                if value is not None and not isinstance(value, str):
                    return t.cast(dict[str, t.Any], self.schema.dump(obj))
                result[key] = value
        return result

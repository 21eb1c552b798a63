"""The run configuration: typed dataclasses read from YAML (schema: configs/README.md).

`load_config(path)` validates everything that can be checked without touching models or data:
unknown keys, types, ranges and model entries. `resolve_models` expands a models section (list,
glob of local or `s3://` paths, factory) into `ModelSpec`s at run time. Errors name the file,
the field and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from disco_ray.backends.base import ModelSpec
from disco_ray.paths import basename, list_paths

SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(ModelSpec))
TASK_OPTIONS = {"split": str, "limit": int,   # what a task name or file takes
                "metric": Literal["acc", "acc_norm"]}


class ConfigError(ValueError):
    """A bad configuration: the message names the source, the field and the fix."""


def config_error(source: str, where: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{source}: field '{where}': {problem}. Fix: {fix}")


@dataclass(frozen=True)
class TaskConfig:
    """Exactly one of `name` (a benchmark), `path` (a local file), `factory` ("module:callable")."""

    name: str | None = None
    path: str | None = None
    factory: str | None = None
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelsConfig:
    """Where a group of models comes from; `defaults` is merged into every entry."""

    models: tuple[dict, ...] = ()
    glob: str | None = None
    factory: str | None = None
    factory_options: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.models or self.glob or self.factory)


@dataclass(frozen=True)
class TargetsConfig(ModelsConfig):
    """Target models; `compute_true_score` also runs them on the full task (demo / smoke)."""

    compute_true_score: bool = False


@dataclass(frozen=True)
class CondenseConfig:
    """`designs`: anchor designs (`design.AnchorDesign.parse`) replacing the method's."""

    k: int = 100
    method: str = "disco"
    seed: int = 0
    designs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResourcesConfig:
    """Per-model actor resources; `gpus_per_model: auto` is decided per model (see actors.py)."""

    cpus_per_model: float = 1.0
    gpus_per_model: float | Literal["auto"] = "auto"
    batch_size: int = 64
    max_retries: int = 2


@dataclass(frozen=True)
class RayConfig:
    """`address: null` starts a local Ray in-process (or joins the one `ray job submit` gives)."""

    address: str | None = None
    num_cpus: int | None = None


@dataclass(frozen=True)
class RunConfig:
    """A whole pipeline run. `source` names the file it came from (for error messages)."""

    name: str
    task: TaskConfig
    references: ModelsConfig
    targets: TargetsConfig = field(default_factory=TargetsConfig)
    output: str | None = None
    condense: CondenseConfig = field(default_factory=CondenseConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    report: bool = True
    source: str = field(default="<dict>", compare=False)

    def to_json(self) -> dict:
        """The configuration as plain data (for run.json)."""
        data = dataclasses.asdict(self)
        data.pop("source")
        return data


# -- loading ----------------------------------------------------------------------------------
def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run configuration."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found. Fix: give the path of a YAML run config "
                          "(see configs/ for examples)")
    try:
        data = yaml.load(path.read_text(), Loader=_unique_key_loader())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}). Fix: check the indentation and "
                          "quoting near the position shown") from None
    return config_from_dict(data, source=str(path))


def _unique_key_loader() -> type:
    """A YAML safe loader that refuses a key given twice in one mapping (PyYAML keeps the last
    silently, so a second `references:` would drop the first)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":   # `<<: *anchor` may be overridden
                    continue
                key = self.construct_object(key_node, deep=deep)
                problem = ("a key must be a plain value" if not isinstance(key, typing.Hashable)
                           else f"key {key!r} is given twice" if key in seen else "")
                if problem:
                    raise yaml.constructor.ConstructorError(None, None, problem,
                                                            key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def config_from_dict(data: Any, source: str = "<dict>") -> RunConfig:
    """Validate a configuration given as plain data (what YAML parsing returns)."""
    config = _build(RunConfig, data, "", source)
    config = dataclasses.replace(config, source=source)
    _check(config)
    return config


def _build(cls: type, data: Any, where: str, source: str) -> Any:
    """Instantiate dataclass `cls` from a mapping, rejecting unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise config_error(source, where or "<top level>", f"expected a mapping, got "
                           f"{type(data).__name__}", "write key: value pairs")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    values = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(known)}"
            raise config_error(source, path, "unknown key", f"remove it or {hint}")
        values[key] = _convert(hints[key], value, path, source)
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in values and f.name in known
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        where_missing = f"{where}.{missing[0]}" if where else missing[0]
        raise config_error(source, where_missing, "is required", "add it")
    return cls(**values)


def _convert(hint: Any, value: Any, where: str, source: str) -> Any:
    """Check `value` against a (simple) type hint; nested dataclasses are built recursively."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where, source)
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    for option in options:
        if _matches(option, value):
            return tuple(value) if typing.get_origin(option) is tuple else value
    if len(options) == 1 and typing.get_origin(hint) is tuple and isinstance(value, list):
        item = typing.get_args(hint)[0]
        i = next(i for i, v in enumerate(value) if not _matches(item, v))
        _convert(item, value[i], f"{where}[{i}]", source)   # raises, naming the bad item
    allowed = " or ".join(_type_name(option) for option in options)
    raise config_error(source, where, f"expected {allowed}, got {value!r}",
                       f"give {allowed}")


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _matches(hint: Any, value: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is type(None):
        return value is None
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, list) and all(_matches(item, v) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin or hint)


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is Literal:
        return " or ".join(repr(v) for v in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return "a list"
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false",
            dict: "a mapping"}.get(hint, str(hint))


def _check(config: RunConfig) -> None:
    """Cross-field rules the types cannot express."""
    src = config.source
    sources = [key for key in ("name", "path", "factory") if getattr(config.task, key)]
    if len(sources) != 1:
        raise config_error(src, "task", f"has {len(sources)} of name/path/factory "
                           f"({', '.join(sources) or 'none'})",
                           "give exactly one: a benchmark name, a task file path or a factory")
    if not config.task.factory:
        for key, value in config.task.options.items():
            if key not in TASK_OPTIONS:
                raise config_error(src, f"task.options.{key}", "unknown task option",
                                   f"use {', '.join(TASK_OPTIONS)} (any option goes to a factory)")
            if value is not None:   # null: the task's default
                _convert(TASK_OPTIONS[key], value, f"task.options.{key}", src)
        if config.task.options.get("limit") is not None:
            _check_range(src, "task.options.limit", config.task.options["limit"], 1)
    if config.name in ("", ".", "..") or Path(config.name).name != config.name:
        raise config_error(src, "name", f"{config.name!r} is not a plain name (it names the "
                           "output folder runs/<name>)", "give a name such as my-eval")
    if config.references.empty:
        raise config_error(src, "references", "lists no models",
                           "give `models`, a `glob` or a `factory`")
    for key in ("task.factory", "references.factory", "targets.factory"):
        section, attr = key.split(".")
        value = getattr(getattr(config, section), attr)
        if value is not None and ":" not in value:
            raise config_error(src, key, f"'{value}' is not an import path",
                               "write 'package.module:callable'")
    from disco_ray.methods import METHODS

    if config.condense.method not in METHODS:
        raise config_error(src, "condense.method", f"unknown method '{config.condense.method}'",
                           f"use one of {', '.join(METHODS)}")
    _check_range(src, "condense.k", config.condense.k, 1)
    from disco_ray.design import AnchorDesign

    for i, design in enumerate(config.condense.designs):
        try:
            AnchorDesign.parse(design)
        except ValueError as err:
            raise config_error(src, f"condense.designs[{i}]", str(err).partition(". Fix: ")[0],
                               str(err).partition(". Fix: ")[2]) from err
    _check_range(src, "condense.seed", config.condense.seed, 0)
    if config.ray.num_cpus is not None:
        _check_range(src, "ray.num_cpus", config.ray.num_cpus, 1)
    _check_range(src, "resources.batch_size", config.resources.batch_size, 1)
    _check_range(src, "resources.max_retries", config.resources.max_retries, 0)
    _check_range(src, "resources.cpus_per_model", config.resources.cpus_per_model, 0)
    if config.resources.gpus_per_model != "auto":
        _check_range(src, "resources.gpus_per_model", config.resources.gpus_per_model, 0)
    for group in ("references", "targets"):
        section = getattr(config, group)
        _check_entry(src, f"{group}.defaults", section.defaults, required=())
        for i, entry in enumerate(section.models):
            _check_entry(src, f"{group}.models[{i}]", entry, required=())   # before merging
            make_spec(merge_defaults(entry, section.defaults), src, f"{group}.models[{i}]")


def _check_range(source: str, where: str, value: float, low: float) -> None:
    if value < low:
        raise config_error(source, where, f"is {value}, below the minimum {low}",
                           f"set it to at least {low}")


# -- model entries ----------------------------------------------------------------------------
def merge_defaults(entry: dict, defaults: dict) -> dict:
    """`defaults` overridden by `entry`; `options` are merged key by key."""
    merged = {**defaults, **entry}
    if "options" in defaults or "options" in entry:
        merged["options"] = {**defaults.get("options", {}), **entry.get("options", {})}
    return merged


def _check_entry(source: str, where: str, entry: Any, required: tuple[str, ...]) -> None:
    if not isinstance(entry, dict):
        raise config_error(source, where, f"expected a mapping, got {entry!r}",
                           f"write a model entry with keys {', '.join(SPEC_FIELDS)}")
    for key in entry:
        if key not in SPEC_FIELDS:
            close = difflib.get_close_matches(str(key), SPEC_FIELDS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"use {', '.join(SPEC_FIELDS)}"
            raise config_error(source, f"{where}.{key}", "unknown model field",
                               f"remove it or {hint}")
    if not isinstance(entry.get("options", {}), dict):
        raise config_error(source, f"{where}.options", f"expected a mapping, got "
                           f"{entry['options']!r}", "write options as key: value pairs")
    for key in required:
        if not entry.get(key):
            raise config_error(source, f"{where}.{key}", "is missing",
                               f"give every model a {key} (or set it in `defaults`)")


def make_spec(entry: dict, source: str, where: str) -> ModelSpec:
    """A validated `ModelSpec` from a model entry (defaults already merged); `name` defaults to
    the last component of `path`."""
    _check_entry(source, where, entry, required=("backend", "path"))
    if not entry.get("name"):
        entry = {**entry, "name": basename(str(entry["path"]))}
    hints = typing.get_type_hints(ModelSpec)
    values = {key: _convert(hints[key], value, f"{where}.{key}", source)
              for key, value in entry.items()}
    _check_range(source, f"{where}.tensor_parallel_size", values.get("tensor_parallel_size", 1), 1)
    return ModelSpec(**values)


# -- resolution (run time) --------------------------------------------------------------------
def import_callable(path: str, source: str, where: str) -> Callable:
    """The callable named by "package.module:attribute"."""
    module_name, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise config_error(source, where, f"cannot import '{path}' ({err})",
                           "check the module path and the callable's name") from None


def call_factory(path: str, options: dict, output_dir: Path, source: str, where: str) -> Any:
    """Call a factory with `options`, plus `output_dir` if its signature takes one."""
    factory = import_callable(path, source, where)
    kwargs = dict(options)
    if "output_dir" in inspect.signature(factory).parameters:
        kwargs.setdefault("output_dir", output_dir)
    try:
        return factory(**kwargs)
    except TypeError as err:
        raise config_error(source, where, f"'{path}' rejected its options ({err})",
                           "match the factory's parameters in the options") from None


def resolve_models(section: ModelsConfig, output_dir: Path, source: str,
                   where: str) -> list[ModelSpec]:
    """Expand a models section into specs: listed entries, then glob matches, then factory."""
    entries = [(f"{where}.models[{i}]", e) for i, e in enumerate(section.models)]
    if section.glob:
        matches = list_paths(section.glob)
        if not matches:
            raise config_error(source, f"{where}.glob", f"'{section.glob}' matches nothing",
                               "check the pattern (wildcards in the last path component only)")
        entries += [(f"{where}.glob[{path}]", {"name": basename(path), "path": path})
                    for path in matches]
    if section.factory:
        made = call_factory(section.factory, section.factory_options, output_dir, source,
                            f"{where}.factory")
        if not isinstance(made, list):
            raise config_error(source, f"{where}.factory", f"returned {type(made).__name__}",
                               "return a list of model entries (dicts)")
        entries += [(f"{where}.factory[{i}]", e) for i, e in enumerate(made)]
    return [make_spec(merge_defaults(entry, section.defaults), source, label)
            for label, entry in entries]

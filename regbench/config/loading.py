"""Loading a study: parse the YAML, apply ``--set``, expand the sweep, validate every variant, and report
every problem at once."""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from regbench.config.messages import Problems, error_lines, known_key, line_of, unknown_dotted_key, unknown_key
from regbench.config.names import case_collisions, name_problem
from regbench.config.schema import (
    SECTIONS,
    VARIANT_KEYS,
    AnalysisConfig,
    ExecutionConfig,
    Experiment,
    OutputConfig,
    StudyFile,
    VariantConfig,
    seed_rounds,
    show_value,
)
from regbench.config.study_yaml import parse_study
from regbench.config.sweep import expand_sweep, set_path, sweep_grid
from regbench.errors import ConfigError
from regbench.store.files import read_file

STUDY_BYTES = 4 * 2**20  # a study file: a few kB in practice


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_overrides(items: list[str]) -> list[tuple[list[str], Any]]:
    """Parse ``--set dotted.key=value`` items. Values are YAML (``0.5``, ``[0.3, 0]``, ``null``, ``true``).

    Raises:
        ConfigError: when an item has no ``=``, names an unknown key, or its value is not valid YAML.
    """
    parsed, problems = [], []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item}: expected dotted.key=value, e.g. --set train.epochs=2")
            continue
        path = key.split(".")
        if path[0] == "variants":
            ok = len(path) >= 4 and known_key(path[2:])
        elif path[0] in ("output", "analysis", "execution"):
            section = {"output": OutputConfig, "analysis": AnalysisConfig, "execution": ExecutionConfig}[path[0]]
            ok = len(path) == 2 and path[1] in section.model_fields
        else:
            ok = known_key(path)
        if not ok:
            hint = unknown_dotted_key(".".join(path[2:] if path[0] == "variants" else path))
            if path[0] in ("output", "analysis", "execution") and len(path) == 2:
                hint = unknown_key(path[1], list(section.model_fields))
            elif path[0] == "variants" and len(path) < 4:
                hint = "expected variants.<name>.<section>.<key>, e.g. variants.dropout.train.epochs"
            problems.append(f"--set {key}: {hint}")
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            problems.append(f"--set {key}: expected a YAML value, got {raw!r} ({exc.problem})")
            continue
        parsed.append((path, value))
    if problems:
        raise ConfigError(problems)
    return parsed


def _swept_names(raw: dict[str, Any]) -> list[str]:
    """The names of the variants a study's sweep makes ([] without one, or when it cannot be expanded)."""
    sweep, problems = sweep_grid(raw.get("sweep"))
    sweep.pop("train.seeds", None)
    if problems or not sweep:
        return []
    variants = raw.get("variants") if isinstance(raw.get("variants"), dict) else {}
    try:
        return [str(name) for name in expand_sweep(variants or {}, sweep)[0]]
    except ConfigError:
        return []


def _has_path(tree: Any, path: list[str]) -> bool:
    for part in path:
        if isinstance(tree, list) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
            continue
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def _apply_overrides(raw: dict[str, Any], overrides: list[str]) -> set[tuple[str, ...]]:
    """Apply ``--set`` overrides in place: to the defaults, and to every variant that sets the same key itself,
    so that ``--set train.epochs=2`` means two epochs everywhere. Returns the overridden paths."""
    overridden: set[tuple[str, ...]] = set()
    for path, value in parse_overrides(overrides):
        variants = raw.get("variants") if isinstance(raw.get("variants"), dict) else {}
        if path[0] == "variants" and path[1] not in {str(v) for v in variants}:
            swept = _swept_names(raw)
            names = [str(v) for v in variants] + swept
            close = difflib.get_close_matches(path[1], names, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"its variants: {', '.join(names) or 'none'}"
            if path[1] in swept:
                hint = "a sweep's variants are made from its keys: set the key itself (--set KEY=VALUE) or the sweep"
            raise ConfigError([f"--set {'.'.join(path)}: this study has no variant {path[1]!r}; {hint}"])
        overridden.add(tuple(path))
        set_path(raw, path, value)
        if path[0] not in ("variants", "name", "description", "output", "analysis", "execution"):
            for spec in (raw.get("variants") or {}).values():
                if isinstance(spec, dict) and _has_path(spec, path):
                    set_path(spec, path, value)
    return overridden


def _variant(
    vname: str,
    spec: Any,
    defaults: dict[str, Any],
    swept: tuple[str, ...],
    implicit: bool,
    study_ok: bool,
    problems: Problems,
    inherited: dict[tuple[tuple[str, ...], str, str], list[tuple[str, int]]],
) -> VariantConfig | None:
    """Validate one variant (its overrides merged onto the defaults), locating each problem where it was
    written: the variant's own key, the sweep line that produced the value, or the key itself for the implicit
    ``default`` variant; a problem of what it inherits goes to ``inherited`` (reported once when every variant
    has it). Returns None when it has problems."""
    prefix = ("variants", vname)
    bad_name = name_problem(vname)
    if bad_name:
        problems.add(problems.lines.get(prefix, 1), f"variants.{vname}: expected {bad_name}")
        return None
    spec = spec or {}
    if not isinstance(spec, dict):
        problems.add(problems.lines.get(prefix, 1), f"variants.{vname}: expected a mapping, got {show_value(spec)}")
        return None
    unknown = [str(k) for k in spec if k not in VARIANT_KEYS]
    for key in unknown:
        problems.at((*prefix, key), unknown_key(key, list(VARIANT_KEYS), "section"))
    if unknown:
        return None
    try:
        return VariantConfig.model_validate(_deep_merge(defaults, spec))
    except ValidationError as exc:
        for loc, text, got in error_lines(exc, VariantConfig):
            key = next((k for k in swept if ".".join(loc).startswith(k)), None)
            if key is not None:  # a value from the sweep grid
                problems.add(problems.lines.get(("sweep", key), 1), f"sweep.{key}: {text}{got}")
            elif _has_path(spec, list(loc)):
                problems.at((*prefix, *loc), text, got, floor=2)  # the variant's own override is wrong
            elif not study_ok and _has_path(defaults, list(loc)):
                continue  # a wrong default, already reported once
            elif implicit:  # the implicit 'default' variant: name the key only
                problems.at(loc, text, got)
            else:  # e.g. a list of dropout rates that no longer matches the variant's hidden_units
                line = line_of(problems.lines, (*prefix, *loc), 2) or line_of(problems.lines, loc)
                inherited.setdefault((loc, text, got), []).append((vname, line or problems.lines.get(prefix, 1)))
    return None


def _report_inherited(
    inherited: dict[tuple[tuple[str, ...], str, str], list[tuple[str, int]]], variants: int, problems: Problems
) -> None:
    """A problem every variant inherits, once at the key (the momentum of an adam study); else per variant."""
    for (loc, text, got), where in inherited.items():
        names = [name for name, _ in where]
        if len(where) > 1 or problems.set_by_override(loc):
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            which = "every variant" if len(where) == variants else f"variant{'s' * (len(names) > 1)} {shown}"
            if problems.set_by_override(loc):
                problems.found.append(f"--set {'.'.join(loc)}: {text}{got} (in {which})")
            else:
                line = line_of(problems.lines, loc) or where[0][1]
                problems.add(line, f"{'.'.join(loc)}: {text}{got} (in {which})")
            continue
        problems.add(where[0][1], f"variants.{names[0]}: {'.'.join(loc)}: {text}{got}")


def load_text(text: str, source: str = "<config>", overrides: list[str] | None = None) -> Experiment:
    """Load a study from YAML text: parse, apply overrides, validate the defaults, expand the sweep, validate
    every variant, and report every problem at once. See :func:`load`."""
    raw = parse_study(text, source)
    problems = Problems(text, source, _apply_overrides(raw, overrides or []))

    study = None
    try:
        study = StudyFile.model_validate({k: v for k, v in raw.items() if k != "variants"})
    except ValidationError as exc:
        for loc, message, got in error_lines(exc, StudyFile):
            problems.at(loc, message, got)

    variants_raw = raw.get("variants")
    if not isinstance(variants_raw, (dict, type(None))):
        problems.add(
            problems.lines.get(("variants",), 1),
            f"variants: expected a mapping of variant name -> overrides, got {show_value(variants_raw)}",
        )
        variants_raw = {}
    sweep, sweep_problems = sweep_grid(raw.get("sweep"))
    for key, message in sweep_problems:
        problems.at(("sweep", key), message)
    if "train.seeds" in sweep:  # the seeds of every variant (--seeds or --set train.seeds wins)
        seeds = sweep.pop("train.seeds")
        raw.setdefault("train", {})
        if isinstance(raw["train"], dict) and ("train", "seeds") not in problems.overridden:
            raw["train"]["seeds"] = seeds
    searched = isinstance(raw.get("search"), dict)
    if searched and sweep:
        problems.at(("search",), "a study searches or sweeps, not both; remove search or sweep")
    analysis = raw.get("analysis") if isinstance(raw.get("analysis"), dict) else {}
    if searched and analysis.get("max_seeds") is not None:
        problems.at(
            ("analysis", "max_seeds"),
            "a search's trials are not given seeds until decided; remove analysis.max_seeds (or --until-decided)",
        )
    implicit = not raw.get("variants") and not sweep and not searched  # a search's trials are its variants
    try:
        variants_raw, swept = expand_sweep(variants_raw or {}, sweep)
    except ConfigError as exc:
        raise ConfigError([f"{source}:{problems.line(('sweep',))}: {p}" for p in exc.problems]) from None
    if searched and not raw.get("variants"):
        variants_raw = {}  # no implicit "default" variant: the trials are the study's variants

    defaults = {k: raw[k] for k in SECTIONS if k in raw}
    variants: dict[str, VariantConfig] = {}
    inherited: dict[tuple[tuple[str, ...], str, str], list[tuple[str, int]]] = {}
    for vname, spec in variants_raw.items():
        vname = str(vname)
        cfg = _variant(vname, spec, defaults, swept.get(vname, ()), implicit, study is not None, problems, inherited)
        if cfg is not None:
            variants[vname] = cfg
    _report_inherited(inherited, len(variants_raw), problems)
    case_collisions([str(v) for v in variants_raw], problems)
    base: dict[str, Any] = {}
    if study is not None and study.search is not None:
        base = _search_space(study.search.space, defaults, problems)
    problems.raise_any()
    if study is None:  # unreachable: a study that failed validation has reported problems
        raise ConfigError([f"{source}: invalid study"])
    first_seeds = max((v.train.seeds for v in variants.values()), key=len, default=None)
    if first_seeds is None:
        first_seeds = VariantConfig.model_validate(defaults).train.seeds
    return Experiment(
        name=study.name,
        description=study.description,
        source=source,
        variants=variants,
        sweep_keys=list(sweep),
        output=study.output,
        analysis=study.analysis,
        execution=study.execution,
        search=study.search,
        defaults=base,
        rounds=seed_rounds(first_seeds, study.analysis.max_seeds),
    )


def _search_space(space: dict[str, Any], defaults: dict[str, Any], problems: Problems) -> dict[str, Any]:
    """Check every searched key against the config schema (a known key; both ends of a range and every choice a
    value the key takes); return the defaults as one resolved variant (JSON), what each trial starts from."""
    try:
        base = VariantConfig.model_validate(defaults).model_dump(mode="json")
    except ValidationError:
        return {}  # the sections' own problems are reported where they are written
    for key, values in space.items():
        path = key.split(".")
        if not known_key(path) or path[-1] == "seeds":
            problems.at(
                ("search", "space", key),
                "unknown or unsearchable key; expected a dotted config key such "
                "as regularization.l2 or train.learning_rate (not train.seeds)",
            )
            continue
        candidates = values if isinstance(values, list) else [values.low, values.high]
        if isinstance(values, list) and not values:
            problems.at(("search", "space", key), "expected at least one choice")
        for value in candidates:
            tree = copy.deepcopy(base)
            set_path(tree, path, value)
            try:
                VariantConfig.model_validate(tree)
            except ValidationError as exc:
                for loc, message, got in error_lines(exc, VariantConfig):
                    problems.at(("search", "space", key), f"{'.'.join(loc)}: {message}", got)
                break
    return base


def load(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Load and validate a study file.

    Args:
        path: The YAML file.
        overrides: ``dotted.key=value`` strings applied before validation (``--set``).

    Returns:
        The experiment with every variant fully resolved.

    Raises:
        ConfigError: listing every problem found, each as ``FILE:LINE: key: expected ..., got ...``.
    """
    path = Path(path)
    try:
        data = read_file(path, STUDY_BYTES, follow=True)
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file; expected a study YAML such as configs/dropout.yaml"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); expected a study "
                "YAML file such as configs/dropout.yaml"
            ]
        ) from None
    except ValueError as exc:  # not a regular file (a device, a FIFO, a folder), or too large to be a study
        raise ConfigError([f"{path}: {exc}; expected a study YAML such as configs/dropout.yaml"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    return load_text(text, source=str(path), overrides=overrides)


def resolved_dict(experiment: Experiment) -> dict[str, Any]:
    """The experiment as a plain mapping, every default filled in: what a run folder records."""
    return {
        "name": experiment.name,
        "description": experiment.description,
        "source": experiment.source,
        "analysis": {
            **experiment.analysis.model_dump(mode="json"),
            "rounds": len(experiment.rounds),
            "level": experiment.level,  # what compare decides this folder's verdicts at
        },
        "execution": experiment.execution.model_dump(mode="json"),
        "search": experiment.search.model_dump(mode="json") if experiment.search else None,
        "variants": {name: v.model_dump(mode="json") for name, v in experiment.variants.items()},
    }


def json_schema() -> dict[str, Any]:
    """JSON Schema of the study file format, from the same models that validate it."""
    schema = StudyFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "regbench study"
    return schema


_UNSET = object()


def _changes(a: Any, b: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """Where two resolved configs differ: (dotted key, before, after) at the shallowest key that differs."""
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        return [c for k in dict.fromkeys([*a, *b]) for c in _changes(a.get(k, _UNSET), b.get(k, _UNSET), (*path, k))]
    return [(".".join(path), a, b)]


def override_effects(path: str | Path, overrides: list[str]) -> list[tuple[str, list[str]]]:
    """What each ``--set`` changed, in order: for each, lines ``key: before → after in <variants>``. Each one is
    measured against the study with the ones before it applied, so every change is told once, by the --set
    that made it (``--set regularization.early_stopping.patience=5`` shows early stopping turned on in every
    variant, the baseline too).

    Raises:
        ConfigError: as :func:`load`.
    """

    def shown(value: Any) -> str:
        return "(unset)" if value is _UNSET else json.dumps(value, separators=(", ", ": "))

    def variants(overrides_so_far: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        """Each variant's resolved config, and the study-wide sections (output, analysis, execution, search)."""
        experiment = load(path, overrides_so_far)
        study = experiment.model_dump(mode="json", include={"output", "analysis", "execution", "search"})
        return {name: v.model_dump(mode="json") for name, v in experiment.variants.items()}, study

    effects = []
    before, study_before = variants([])
    for i, override in enumerate(overrides):
        after, study_after = variants(overrides[: i + 1])
        where: dict[tuple[str, str, str], list[str]] = {}
        for name in after.keys() & before.keys():
            for key, a, b in _changes(before[name], after[name]):
                where.setdefault((key, shown(a), shown(b)), []).append(name)
        order = list(after)
        lines = [f"{key}: {shown(a)} → {shown(b)} (study-wide)" for key, a, b in _changes(study_before, study_after)]
        for (key, a, b), names in where.items():
            names.sort(key=order.index)
            scope = f"every variant ({len(order)})" if len(names) == len(order) else ", ".join(names)
            lines.append(f"{key}: {a} → {b} in {scope}")
        if added := [n for n in after if n not in before]:
            lines.append(f"adds variants {', '.join(added)}")
        if removed := [n for n in before if n not in after]:
            lines.append(f"removes variants {', '.join(removed)}")
        effects.append((override, lines))
        before, study_before = after, study_after
    return effects

"""A study's ``search:``: Optuna asks trials in batches of trials, each batch trains as variants of the study
(fused where its runs can be), and each trial is told the mean over its seeds of a validation metric — never a
test metric.

The Optuna study lives in the experiment folder (``search.db``, SQLite). A session killed at any point resumes
with ``--resume``: trials already told are kept, a trial asked but not told is trained again from its recorded
parameters (its finished runs are skipped), and no new trial is asked until those are told — so no trial is
lost or repeated.
"""

from __future__ import annotations

import copy
import io
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.config.schema import Experiment, VariantConfig
from regbench.config.sweep import set_path
from regbench.errors import RegbenchError
from regbench.store.layout import SEARCH_DATABASE, SEARCH_HISTORY, SEARCH_IMPORTANCE, SEARCH_PARALLEL, run_dir
from regbench.store.reader import read_run
from regbench.store.records import Status

if TYPE_CHECKING:
    from regbench.study.run import Result, Trainings


def trial_name(number: int) -> str:
    return f"trial-{number:03d}"


def distributions(experiment: Experiment) -> dict[str, Any]:
    """Optuna's distribution of each searched key (a range: float, or int when the key takes integers)."""
    import optuna

    base = experiment.defaults
    out: dict[str, Any] = {}
    for key, values in experiment.search.space.items():
        if isinstance(values, list):
            out[key] = optuna.distributions.CategoricalDistribution(values)
            continue
        current: Any = base
        for part in key.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        whole = isinstance(current, int) and not isinstance(current, bool)
        whole = whole and float(values.low).is_integer() and float(values.high).is_integer()
        kind = optuna.distributions.IntDistribution if whole else optuna.distributions.FloatDistribution
        low, high = (int(values.low), int(values.high)) if whole else (values.low, values.high)
        out[key] = kind(low, high, log=values.log)
    return out


def trial_config(experiment: Experiment, params: dict[str, Any]) -> VariantConfig:
    """The study's defaults with a trial's values set."""
    tree = copy.deepcopy(experiment.defaults)
    for key, value in params.items():
        set_path(tree, key.split("."), value)
    return VariantConfig.model_validate(tree)


def objective_value(exp_dir: Path, variant: str, cfg: VariantConfig, objective: str) -> float | None:
    """The mean over a trial's seeds of ``objective`` at the epoch each run ends with (its best epoch when
    early stopping restored it, else its last); None when a run is missing or unreadable or its value is not
    finite (a diverged run: the trial fails)."""
    values = []
    for seed in cfg.train.seeds:
        try:
            run = read_run(run_dir(exp_dir, variant, seed))
        except ValueError:
            return None
        record, history = run.record, run.history
        epoch = int(record.best_epoch) if record.restored_best_weights else len(history)
        value = history[epoch - 1].get(objective, math.nan) if 0 < epoch <= len(history) else math.nan
        if not math.isfinite(value) or record.status is not Status.FINISHED:
            return None
        values.append(value)
    return statistics.fmean(values) if values else None


def storage_url(database: Path) -> str:
    """The SQLite URL of a file, its path quoted (a '?' or '#' in a folder name would end an unquoted path, and
    SQLite would open another file)."""
    from sqlalchemy.engine import URL

    return URL.create("sqlite", database=str(database.resolve())).render_as_string(hide_password=False)


def open_study(exp_dir: Path, experiment: Experiment):
    """The Optuna study of ``exp_dir`` (created, or loaded when resuming), with the study's sampler."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = experiment.search
    sampler = (
        optuna.samplers.TPESampler(seed=s.seed, constant_liar=True)  # a batch of trials spreads out, not repeats
        if s.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=s.seed)
    )
    try:
        return optuna.create_study(
            study_name=experiment.name,
            storage=storage_url(exp_dir / SEARCH_DATABASE),
            sampler=sampler,
            direction=s.direction,
            load_if_exists=True,
        )
    except Exception as exc:  # sqlalchemy's DatabaseError, Optuna's storage errors: a damaged or foreign file
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RegbenchError(
            f"{exp_dir / SEARCH_DATABASE}: cannot open the search's Optuna study ({why}); the file is damaged or "
            "not one regbench wrote: start a new search (without --resume)",
            exit_code=2,
        ) from None


def run_search(
    experiment: Experiment,
    exp_dir: Path,
    train: Callable[[Experiment], Any],
    on_trial_batch: Callable[[list[str], int], None] | None = None,
) -> tuple[Any, Any]:
    """Ask, train and tell until ``search.trials`` are told. ``train`` trains a study (all trials asked so far,
    plus the study's own variants) into ``exp_dir``, skipping finished runs. Returns the last training result
    and the Optuna study."""
    import optuna

    search = experiment.search
    study = open_study(exp_dir, experiment)
    spaces = distributions(experiment)
    result = None
    while True:
        trials = study.get_trials(deepcopy=False)
        pending = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        if not pending:
            if len(trials) >= search.trials:
                break
            for _ in range(min(search.batch, search.trials - len(trials))):
                study.ask(spaces)
            pending = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
        pending = pending[: search.batch]
        current = with_trials(experiment, study)
        result = train(current)
        for t in pending:
            name = trial_name(t.number)
            value = objective_value(exp_dir, name, current.variants[name], search.objective)
            if value is None:
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(t.number, value)
        if on_trial_batch is not None:
            told = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
            on_trial_batch([trial_name(t.number) for t in pending], len(told))
    if result is None:  # every trial was told in an earlier session: train nothing new, summarize again
        result = train(with_trials(experiment, study))
    return result, study


def _outside(value: Any, space: Any) -> str | None:
    """Why a trial's value is not one its distribution can give (None when it is)."""
    import optuna

    if isinstance(space, optuna.distributions.CategoricalDistribution):
        return None if value in space.choices else f"not one of {list(space.choices)}"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and space.low <= value <= space.high
    return None if ok else f"outside [{space.low}, {space.high}]"


def with_trials(experiment: Experiment, study) -> Experiment:
    """The study with every trial asked so far as a variant (after the study's own variants). A trial whose
    recorded values are not of the study's space (a database changed outside regbench) is an error."""
    from pydantic import ValidationError

    spaces = distributions(experiment)
    variants = dict(experiment.variants)
    for t in study.get_trials(deepcopy=False):
        name = trial_name(t.number)
        problems = [f"{k} is missing" for k in spaces if k not in t.params]
        for key, value in t.params.items():
            why = _outside(value, spaces[key]) if key in spaces else "not a searched key"
            if why:
                problems.append(f"{key} = {value!r} is {why}")
        try:
            if not problems:
                variants[name] = trial_config(experiment, t.params)
        except ValidationError as exc:
            problems = [str(exc.errors(include_url=False)[0]["msg"])]
        if problems:
            raise RegbenchError(
                f"{SEARCH_DATABASE}: {name} was recorded with values this study's space cannot give "
                f"({'; '.join(problems)}); the database was changed outside regbench: start a new search",
                exit_code=2,
            )
    return experiment.model_copy(update={"variants": variants})


def check_search_folder(exp_dir: Path, experiment: Experiment) -> None:
    """--resume of a search needs its database, a regular file, in a folder of this study: checked before Optuna
    opens it (opening another study's database would add this study and its trials to it)."""
    from regbench.study.plan import check_resumable

    database = exp_dir / SEARCH_DATABASE
    check_resumable(exp_dir, experiment)  # this study's folder, no link where regbench reads or writes
    if not database.is_file() or database.is_symlink():
        raise RegbenchError(
            f"--resume {exp_dir}: no {SEARCH_DATABASE} (the folder of a search holds its Optuna study); resume it with "
            "the study it was started with",
            exit_code=2,
        )


FIGURES = {  # file -> Optuna's matplotlib plot
    SEARCH_HISTORY: "plot_optimization_history",
    SEARCH_PARALLEL: "plot_parallel_coordinate",
    SEARCH_IMPORTANCE: "plot_param_importances",
}


def draw(study, exp_dir: Path) -> list[Path]:
    """The search's own figures, by Optuna's matplotlib plots: the objective per trial, the searched keys in
    parallel coordinates, and their importance (fANOVA needs two or more finished trials)."""
    import warnings

    import matplotlib
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    from regbench.store.files import atomic_write

    written = []
    told = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
    for name, plot in FIGURES.items():
        if plot == "plot_param_importances" and len(told) < 2:
            continue
        # Optuna labels log axes with mathtext, which regbench turns off for names it did not write; the labels
        # here are Optuna's own and the searched keys (dotted config keys, no "$")
        with warnings.catch_warnings(), matplotlib.rc_context({"text.parse_math": True}):
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            try:
                axes = getattr(plots, plot)(study)
            except (ValueError, RuntimeError):
                continue  # e.g. a space Optuna cannot draw (one trial, one value)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.set_size_inches(9, 5)
            figure.tight_layout()
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100)  # drawn here, where mathtext is on
            plt.close(figure)
        atomic_write(exp_dir / name, buffer.getvalue())
        written.append(exp_dir / name)
    return written


def _check_before_writing(experiment: Experiment, options) -> None:
    """Every refusal a search can meet, before its folder or its Optuna study is written: a --resume folder of
    another study or with links, a damaged database or trial, data that do not load, or (on --resume) other data
    than the folder's runs were trained on."""
    from regbench.data.splits import splits_for
    from regbench.study.plan import mark_done, plan
    from regbench.study.run import check_data

    if options.resume is not None:
        check_search_folder(options.resume, experiment)
        runs = plan(with_trials(experiment, open_study(options.resume, experiment)))
        mark_done(runs, options.resume)
        check_data(runs, options)
    splits_for(trial_config(experiment, {}), options.data_dir)  # the trials' data (loaded once, then kept)


def search_study(experiment: Experiment, train: Trainings, report: Callable[[str], None]) -> Result:
    """An Optuna search: batches of trials trained into one folder (a new one, or ``--resume``'s) until every
    trial is told; then its figures, and the report written again with them. ``report`` gets a line after each
    batch of trials and one naming the best trial."""
    from dataclasses import replace

    from regbench.config.loading import resolved_dict
    from regbench.output.publish import write_summary
    from regbench.store.writer import ExperimentFolder

    options = train.options
    _check_before_writing(experiment, options)
    if options.resume is not None:
        exp_dir = options.resume
    else:  # the folder first: the Optuna study lives in it from the first trial on
        folder = ExperimentFolder.create(Path(options.out), experiment.name)
        folder.write_config(resolved_dict(experiment))
        exp_dir = folder.path
    train.options = replace(options, resume=exp_dir)

    def on_trial_batch(names: list[str], told: int) -> None:
        report(f"Search: {told}/{experiment.search.trials} trials told (this batch of trials: {', '.join(names)})")

    _, study = run_search(experiment, exp_dir, train, on_trial_batch)
    result = train.totals()
    if draw(study, exp_dir):  # the search's figures, then the report again with them
        result.comparison = write_summary(exp_dir)
    if any(t.value is not None for t in study.get_trials(deepcopy=False)):
        best = study.best_trial
        values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
        report(f"Best trial: {trial_name(best.number)}, {experiment.search.objective} = {best.value:.4f} ({values})")
    return result

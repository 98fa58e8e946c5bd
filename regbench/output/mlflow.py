"""``regbench export mlflow``: one MLflow run per regbench run, so runs can be browsed next to other work.

Each MLflow run gets the run's flattened resolved config as params (plus ``seed``), its final results as
metrics, every history.csv column as a metric per epoch (step = epoch), metrics.json, history.csv and the
experiment's figures as artifacts, and tags: study, variant, seed, run id, backend, folder. Exporting again adds
nothing: a run whose run id and folder are already in the MLflow experiment is skipped. Needs
``pip install 'regbench[mlflow]'``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from regbench.errors import RegbenchError
from regbench.store.identity import comparable_config, run_id
from regbench.store.reader import Run, Skipped, find_runs

FINAL_METRICS = (
    "test_accuracy",
    "test_data_loss",
    "train_accuracy",
    "train_data_loss",
    "generalization_gap",
    "best_epoch",
    "epochs_run",
    "train_time_s",
)


MAX_PARAM = 6000  # MLflow's limit on a param value's length


@dataclass
class Exported:
    added: list[str] = field(default_factory=list)  # "<experiment folder>/<variant>/seed-<s>"
    existing: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    experiments: set[str] = field(default_factory=set)


def _folder_key(run: Run) -> str:
    return f"{run.experiment_dir.name}/{run.variant}/seed-{run.seed}"


def _run_id(run: Run) -> str:
    return run.record.run_id or run_id(run.config, run.seed)


def export_mlflow(paths: list[Path], tracking_uri: str | None = None, experiment: str | None = None) -> Exported:
    """Export every finished run under ``paths`` to MLflow.

    Args:
        paths: Experiment folders, run folders, or folders above them.
        tracking_uri: Where MLflow stores runs, e.g. ``sqlite:///mlflow.db``. Defaults to MLflow's own default
            (``MLFLOW_TRACKING_URI`` if set).
        experiment: MLflow experiment name. Defaults to each run's study name.

    Raises:
        RegbenchError: (exit 2) when MLflow is not installed or no finished run is found.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    try:
        import mlflow.entities  # noqa: F401  (installed: checked here, before anything is read)
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise RegbenchError("export mlflow needs MLflow: pip install 'regbench[mlflow]'", exit_code=2) from None
    runs, skipped = find_runs(paths)
    if not runs:
        raise RegbenchError(
            ["no finished run folders found in " + ", ".join(map(str, paths))]
            + [f"  - {s.path}: {s.reason}" for s in skipped],
            exit_code=2,
        )
    client = MlflowClient(tracking_uri=tracking_uri)
    result = Exported(skipped=skipped)
    # experiment name -> (id, {(run id, folder)} exported completely, {(run id, folder): [MLflow runs left unfinished]})
    known: dict[str, tuple[str, set[tuple[str, str]], dict[tuple[str, str], list[str]]]] = {}
    for run in runs:
        name = experiment or run.experiment
        if name not in known:
            found = client.get_experiment_by_name(name)
            exp_id = found.experiment_id if found else client.create_experiment(name)
            done, unfinished = set(), {}
            for r in client.search_runs([exp_id], max_results=50000):
                key = (r.data.tags.get("regbench.run_id", ""), r.data.tags.get("regbench.folder", ""))
                if _complete(r):
                    done.add(key)
                else:
                    unfinished.setdefault(key, []).append(r.info.run_id)
            known[name] = (exp_id, done, unfinished)
        exp_id, seen, unfinished = known[name]
        key = (_run_id(run), _folder_key(run))
        result.experiments.add(name)
        if key in seen:
            result.existing.append(_folder_key(run))
            continue
        for stale in unfinished.pop(key, []):  # an earlier export failed or was interrupted: replace it
            client.delete_run(stale)
        try:
            _export_run(client, exp_id, run, key)
        except Exception as exc:  # noqa: BLE001 - one run's failure is reported; the next export replaces it
            result.skipped.append(Skipped(run.path, f"export failed: {type(exc).__name__}: {exc}"))
            continue
        seen.add(key)
        result.added.append(_folder_key(run))
    return result


def _complete(mlrun) -> bool:
    """An MLflow run that an export finished: its last step marks it exported and finishes it."""
    return mlrun.info.status == "FINISHED" and mlrun.data.tags.get("regbench.exported") == "true"


def _export_run(client, exp_id: str, run: Run, key: tuple[str, str]) -> None:
    """One regbench run as one MLflow run: params, metrics, artifacts, then the ``regbench.exported`` tag and
    FINISHED, in that order, so a run that fails or is interrupted midway is never taken as exported. A run
    that raises is marked FAILED."""
    from mlflow.entities import Metric, Param, RunTag

    tags = {
        "regbench.run_id": key[0],
        "regbench.folder": key[1],
        "regbench.study": run.experiment,
        "regbench.variant": run.variant,
        "regbench.seed": str(run.seed),
        "regbench.backend": str(run.runtime.get("backend", "?")),
        "mlflow.runName": f"{run.variant}/seed-{run.seed}",
    }
    mlrun = client.create_run(exp_id, tags=tags)
    rid = mlrun.info.run_id
    try:
        now = int(time.time() * 1000)
        params = [Param(k, str(v)[:MAX_PARAM]) for k, v in comparable_config(run.config).items()]
        params.append(Param("seed", str(run.seed)))
        last = int(run.history[-1]["epoch"]) if run.history else 0
        finals = {k: getattr(run.record, k) for k in FINAL_METRICS}
        logged = [Metric(k, float(v), now, last) for k, v in finals.items() if isinstance(v, (int, float))]
        for row in run.history:
            step = int(row.get("epoch", 0))
            logged += [Metric(k, float(v), now, step) for k, v in row.items() if k != "epoch"]
        for i in range(0, max(len(params), len(logged)), 100):
            client.log_batch(rid, metrics=logged[i : i + 100], params=params[i : i + 100], tags=[])
        # Never a symbolic link: it could upload a file from outside the run folder.
        for path in (run.path / "metrics.json", run.path / "history.csv"):
            if path.is_file() and not path.is_symlink():
                client.log_artifact(rid, str(path))
        for figure in sorted(run.experiment_dir.glob("*.png")):
            if figure.is_file() and not figure.is_symlink():
                client.log_artifact(rid, str(figure), artifact_path="figures")
        client.log_batch(rid, tags=[RunTag("regbench.exported", "true")])
        client.set_terminated(rid, status="FINISHED")
    except Exception:
        client.set_terminated(rid, status="FAILED")
        raise

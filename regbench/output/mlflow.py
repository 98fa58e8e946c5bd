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


DATABASES = ("sqlite", "postgresql", "mysql", "mssql")
SERVER_SECONDS = "10"  # MLflow's own default is 120 s per request, with 7 retries: minutes for a typo'd host


def check_tracking_uri(uri: str | None) -> None:
    """Refuse, before anything is read or exported, a tracking URI MLflow would fail on with a traceback or hang on:
    malformed, a file store (which MLflow 3 refuses), another scheme, or a server that does not answer."""
    import socket
    from urllib.parse import urlsplit

    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return  # MLflow's default: sqlite:///mlflow.db in the working directory
    hint = "expected e.g. sqlite:///mlflow.db, postgresql://host/db or http://host:5000"
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise RegbenchError(f"--tracking-uri {uri}: not a URI ({exc}); {hint}", exit_code=2) from None
    scheme = parts.scheme.split("+")[0].lower()
    if uri == "databricks" or scheme == "databricks":
        return  # MLflow's own: its credentials are checked by MLflow (one line, below)
    if scheme in ("", "file") or len(scheme) == 1:  # a path, or a Windows drive letter
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("1", "true"):
            raise RegbenchError(
                f"--tracking-uri {uri}: a folder (MLflow's file store), which MLflow 3 no longer writes; {hint}",
                exit_code=2,
            )
    elif scheme in DATABASES:
        if scheme == "sqlite" and not parts.path.lstrip("/"):
            raise RegbenchError(f"--tracking-uri {uri}: no database file named; {hint}", exit_code=2)
    elif scheme in ("http", "https"):
        if not parts.hostname:
            raise RegbenchError(f"--tracking-uri {uri}: no host; {hint}", exit_code=2)
        try:
            socket.create_connection((parts.hostname, port or (443 if scheme == "https" else 80)), timeout=5).close()
        except OSError as exc:
            raise RegbenchError(
                f"--tracking-uri {uri}: no MLflow server answers there ({exc.strerror or exc}); start it "
                "(mlflow server) or check the host and port",
                exit_code=2,
            ) from None
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", SERVER_SECONDS)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    else:
        raise RegbenchError(f"--tracking-uri {uri}: MLflow has no tracking store {parts.scheme}:; {hint}", exit_code=2)


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
    check_tracking_uri(tracking_uri)
    runs, skipped = find_runs(paths)
    # An experiment folder's figures go with its runs only when it was given (or a folder above it): a run
    # folder given alone has no experiment folder of its own to speak of, only whatever lies two levels up.
    given = [p.resolve() for p in paths]
    figure_folders = {
        r.experiment_dir for r in runs if any(r.experiment_dir.resolve().is_relative_to(g) for g in given)
    }
    if not runs:
        raise RegbenchError(
            ["no finished run folders found in " + ", ".join(map(str, paths))]
            + [f"  - {s.path}: {s.reason}" for s in skipped],
            exit_code=2,
        )
    where = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "MLflow's default store"

    def refused(exc: Exception) -> RegbenchError:  # MLflow's errors for a store it cannot use, as one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return RegbenchError(f"MLflow at {where}: {first}", exit_code=2)

    try:
        client = MlflowClient(tracking_uri=tracking_uri)
    except Exception as exc:  # noqa: BLE001
        raise refused(exc) from None
    result = Exported(skipped=skipped)
    # experiment name -> (id, {(run id, folder)} exported completely, {(run id, folder): [MLflow runs left unfinished]})
    known: dict[str, tuple[str, set[tuple[str, str]], dict[tuple[str, str], list[str]]]] = {}
    for run in runs:
        name = experiment or run.experiment
        if name not in known:
            try:
                found = client.get_experiment_by_name(name)
                exp_id = found.experiment_id if found else client.create_experiment(name)
            except Exception as exc:  # noqa: BLE001
                raise refused(exc) from None
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
            _export_run(client, exp_id, run, key, figure_folders)
        except Exception as exc:  # noqa: BLE001 - one run's failure is reported; the next export replaces it
            result.skipped.append(Skipped(run.path, f"export failed: {type(exc).__name__}: {exc}"))
            continue
        seen.add(key)
        result.added.append(_folder_key(run))
    return result


def _complete(mlrun) -> bool:
    """An MLflow run that an export finished: its last step marks it exported and finishes it."""
    return mlrun.info.status == "FINISHED" and mlrun.data.tags.get("regbench.exported") == "true"


def _export_run(client, exp_id: str, run: Run, key: tuple[str, str], figure_folders: set[Path]) -> None:
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
        for figure in sorted(run.experiment_dir.glob("*.png")) if run.experiment_dir in figure_folders else []:
            if figure.is_file() and not figure.is_symlink():
                client.log_artifact(rid, str(figure), artifact_path="figures")
        client.log_batch(rid, tags=[RunTag("regbench.exported", "true")])
        client.set_terminated(rid, status="FINISHED")
    except Exception:
        client.set_terminated(rid, status="FAILED")
        raise

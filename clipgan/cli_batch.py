"""`clipgan batch`: a jobs file -> pictures and videos in a folder, with a manifest and a contact sheet,
on local worker processes or on Ray. Registers itself on cli.app when imported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from clipgan import cli_options as O
from clipgan.cli_app import RUN, D, app, given, notices, user_errors
from clipgan.config import InitNoise, Optimizer, Precision
from clipgan.errors import ClipganError

JOBS, WORKERS = "Jobs", "Workers"


def parse_sets(items: list[str]) -> dict:
    """--set key=value: the value as JSON where it parses (numbers, lists, true), else as text."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ClipganError(f"--set {item!r}: write key=value, e.g. --set tv_weight=0.1")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except (ValueError, RecursionError):
            out[key.strip().replace("-", "_")] = value
    return out


@app.command()
@user_errors
def batch(
    ctx: typer.Context,
    jobs: Annotated[Path, typer.Argument(help="Text (one job a line, the usual prompt syntax), .jsonl or .csv of job settings (kind: generate, morph or zoom).", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the outputs, manifest.jsonl and contact.html/png (made if missing).", show_default=False)],
    seeds: Annotated[Optional[str], typer.Option(help="Run every job once per seed: 1-8 or 1,5,10-12.", rich_help_panel=JOBS)] = None,
    repeat: Annotated[int, typer.Option(help="Run every job N times, seeds counting up from its own.", rich_help_panel=JOBS)] = 1,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="A default for every job: key=value, any generate, morph or zoom setting; repeatable.", rich_help_panel=JOBS)] = None,
    workers: Annotated[Optional[int], typer.Option(help="Local worker processes (default: one per GPU, else one).", rich_help_panel=WORKERS)] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Run on Ray: a local one, or the cluster at --address.", rich_help_panel=WORKERS)] = False,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster to join (e.g. auto, or HEAD:6379, or ray://HEAD:10001); implies --ray.", rich_help_panel=WORKERS)] = None,
    iterations: O.Iterations = D.iterations,
    size: O.Size = D.size,
    init_noise: O.InitNoiseOpt = InitNoise(D.init_noise),
    cutn: O.Cutn = D.cutn,
    cut_pow: O.CutPow = D.cut_pow,
    optimizer: O.OptimizerOpt = Optimizer(D.optimizer),
    lr: O.Lr = D.lr,
    seed: Annotated[Optional[int], typer.Option(help="Seed of every job without its own (default: one derived from the job's name).", rich_help_panel=RUN)] = D.seed,
    device: Annotated[str, typer.Option(help="auto (each worker its own GPU), cpu, cuda, cuda:N or mps.", rich_help_panel=RUN)] = D.device,
    precision: O.PrecisionOpt = Precision(D.precision),
    image_model: O.ImageModelOpt = D.image_model,
    strokes: O.StrokesOpt = D.strokes,
    vqgan: O.VqganName = D.vqgan,
    vqgan_config: O.VqganConfig = D.vqgan_config,
    vqgan_checkpoint: O.VqganCheckpoint = D.vqgan_checkpoint,
    clip: O.Clip = None,
    trust_checkpoint: O.Trust = D.trust_checkpoint,
    quiet: O.Quiet = False,
):
    """Run many jobs from a file; again with the same command, only the unfinished ones. Exit code 1 when any job failed."""
    from clipgan.batch.jobs import make_jobs, parse_seeds
    from clipgan.interrupt import INTERRUPTED, sigterm_interrupts

    values = dict(iterations=iterations, size=list(size) if size else None, init_noise=init_noise.value, cutn=cutn, cut_pow=cut_pow,
                  optimizer=optimizer.value, lr=lr, seed=seed, precision=precision.value, vqgan=vqgan,
                  image_model=image_model, strokes=strokes,
                  vqgan_config=vqgan_config, vqgan_checkpoint=vqgan_checkpoint, clip=clip,
                  trust_checkpoint=trust_checkpoint)
    defaults = {k: values[k] for k in given(ctx, list(values))}  # the rest stay the library's defaults
    defaults.update(parse_sets(set_ or []))
    todo = make_jobs(jobs, defaults, parse_seeds(seeds) if seeds else None, repeat)
    try:
        with notices(quiet), sigterm_interrupts():
            summary = _run(todo, output, workers, device, ray or address is not None, address, quiet)
    except KeyboardInterrupt:
        typer.echo(f"interrupted; finished outputs are in {output}: run the same command again to go on", err=True)
        raise typer.Exit(INTERRUPTED) from None
    parts = [f"{summary.done} done", f"{summary.failed} failed"]
    if summary.skipped:
        parts.append(f"{summary.skipped} finished before")
    typer.echo(f"{', '.join(parts)}; see {output / 'contact.html'} and {output / 'manifest.jsonl'}")
    if summary.failed:
        raise typer.Exit(1)


def _run(todo, output: Path, workers, device: str, ray: bool, address, quiet: bool):
    import warnings

    from tqdm import tqdm

    from clipgan.batch.manifest import Manifest
    from clipgan.batch.run import run_batch
    from clipgan.errors import ClipganNotice

    manifest = Manifest(output) if output.is_dir() else None
    before = sum(manifest.finished(job) for job in todo) if manifest else 0
    bar = tqdm(total=len(todo), initial=before, disable=quiet, unit="job", dynamic_ncols=True)
    seen: set[str] = set()

    def on_record(record: dict) -> None:
        bar.update(1)
        if record["status"] != "done":
            tqdm.write(f"failed: {record['job']}: {record['error']}")
        for note in record.get("notes", []):
            if note not in seen:  # the same note from every job once
                seen.add(note)
                warnings.warn(note, ClipganNotice)

    try:
        summary = run_batch(todo, output, workers=workers, device=device, ray=ray, address=address, on_record=on_record)
    finally:
        bar.close()
    return summary

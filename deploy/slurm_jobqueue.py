"""Train a map on Slurm the dask-jobqueue way: the driver is the scheduler, workers are jobs.

Run this on a login node (or in a small batch job) with the environment that has dasksom and
dask-jobqueue (``pip install 'dasksom[slurm]'``).  It starts a Dask scheduler in this process,
submits ``--jobs`` Slurm jobs that each run ``--processes`` Dask workers sharing ``--cores``
cores and ``--memory``, waits until every worker has joined, trains with a checkpoint after
every epoch, and writes ``OUTPUT/map.npz`` and ``OUTPUT/summary.json``.  Running the same
command again after an interruption resumes from ``OUTPUT/checkpoint.npz``.  The worker jobs
are cancelled when the driver ends.

    python deploy/slurm_jobqueue.py /scratch/data.zarr /scratch/som-run --size 100x100 \\
        --jobs 4 --cores 32 --memory 120GB --processes 4 --walltime 04:00:00 \\
        --queue compute --account proj42 --job-extra=--constraint=ib --interface ib0

``--job-extra`` adds ``#SBATCH`` lines (repeat it), e.g. ``--job-extra=--mem-per-cpu=4G`` (with
``--memory`` still telling Dask the worker memory; the ``--mem`` line is then left out).
``--dry-run`` prints the worker job script and submits nothing.  ``--interface`` picks the
network the scheduler and workers talk over (e.g. ``ib0``); by default the scheduler binds to
this host's name.  The worker jobs run this interpreter (``sys.executable``) unless
``--python`` says otherwise, so start the driver with the virtual environment's python.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        message = f"size must look like HEIGHTxWIDTH, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    return height, width


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("data", help="data path (anything dasksom train reads, e.g. .npy, .zarr)")
    parser.add_argument("output", type=Path, help="folder for map.npz, summary.json, checkpoint")
    parser.add_argument("--size", type=_size, default=(20, 20), metavar="HxW", help="map size")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", choices=("random", "sample", "pca"), default="pca")
    parser.add_argument("--chunks", default="auto", help="rows per chunk, or e.g. 128MiB")
    parser.add_argument("--jobs", type=int, default=2, help="Slurm jobs to submit")
    parser.add_argument("--cores", type=int, default=1, help="cores per job")
    parser.add_argument("--memory", default="2GB", help="memory per job (Dask's view)")
    parser.add_argument("--processes", type=int, default=1, help="Dask workers per job")
    parser.add_argument("--walltime", default="01:00:00", help="per worker job")
    parser.add_argument("--queue", help="Slurm partition")
    parser.add_argument("--account", help="Slurm account")
    parser.add_argument(
        "--job-extra", action="append", default=[], help="extra #SBATCH option (repeatable)"
    )
    parser.add_argument("--interface", help="network interface for scheduler and workers")
    parser.add_argument("--python", default=sys.executable, help="python of the worker jobs")
    parser.add_argument(
        "--log-directory", type=Path, help="worker job logs (default OUTPUT/worker-logs)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds to wait for all workers to join"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the worker job script and submit nothing"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    import dasksom
    from dasksom.io.sources import as_dask_array

    args.output.mkdir(parents=True, exist_ok=True)
    log_directory = args.log_directory or args.output / "worker-logs"
    scheduler_options = {"dashboard_address": ":0"}
    if args.interface is None:
        scheduler_options["host"] = socket.gethostname()
    n_workers = args.jobs * args.processes
    # sbatch refuses --mem together with --mem-per-cpu: the latter wins.
    per_cpu = any(extra.startswith("--mem-per-cpu") for extra in args.job_extra)
    cluster = SLURMCluster(
        cores=args.cores,
        memory=args.memory,
        processes=args.processes,
        walltime=args.walltime,
        queue=args.queue,
        account=args.account,
        job_extra_directives=args.job_extra,
        job_directives_skip=["--mem"] if per_cpu else [],
        interface=args.interface,
        python=args.python,
        log_directory=str(log_directory),
        scheduler_options=scheduler_options,
        # A worker whose scheduler is gone (the driver died) ends its job.
        death_timeout=60,
    )
    if args.dry_run:
        print(cluster.job_script(), flush=True)
        cluster.close()
        return 0
    with cluster, Client(cluster) as client:
        print(f"slurm_jobqueue: scheduler {cluster.scheduler_address}; worker job script:")
        print(cluster.job_script(), flush=True)
        cluster.scale(jobs=args.jobs)
        started = time.monotonic()
        try:
            client.wait_for_workers(n_workers, timeout=args.timeout)
        except TimeoutError:
            print(
                f"slurm_jobqueue: {len(client.nthreads())} of {n_workers} workers joined "
                f"within {args.timeout:g}s",
                file=sys.stderr,
            )
            return 1
        job_ids = sorted(
            {job.job_id for job in cluster.workers.values() if job.job_id},
            key=lambda job_id: (len(job_id), job_id),
        )
        print(
            f"slurm_jobqueue: {n_workers} workers in Slurm jobs {', '.join(job_ids)} joined "
            f"after {time.monotonic() - started:.1f}s",
            flush=True,
        )

        chunks = int(args.chunks) if args.chunks.isdigit() else args.chunks
        data = as_dask_array(args.data, chunks=chunks)
        height, width = args.size
        som = dasksom.SOM(
            height,
            width,
            init=args.init,
            epochs=args.epochs,
            random_state=args.seed,
            chunks=chunks,
            checkpoint=args.output / "checkpoint.npz",
            verbose=True,
        ).fit(data)
        som.save(args.output / "map.npz")
        summary = {
            "map": str(args.output / "map.npz"),
            "size": [som.height, som.width],
            "epochs": som.n_iter_,
            "quantization_error": float(som.quantization_error(data)),
            "workers": n_workers,
            "slurm_jobs": job_ids,
        }
        (args.output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"slurm_jobqueue: wrote {summary['map']} ({som.n_iter_} epochs)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

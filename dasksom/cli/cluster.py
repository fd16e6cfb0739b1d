"""The command line's Dask cluster: a local one, or a running scheduler reached by address or
scheduler file, over TLS where asked, and never waiting longer than ``--connect-timeout``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

from dasksom.cli.config import RunError, UsageError, whole_number

# How long a scheduler file that exists may stay unreadable: the scheduler writes it in one go,
# so this only covers catching it half-written.
_HALF_WRITTEN_GRACE_S = 1.0


class LocalWorkers(argparse.Action):
    """``--workers N``: a local cluster, overriding a scheduler named in a config file."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.scheduler_address = None
        namespace.scheduler_file = None


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(
            f"a timeout must be a positive number of seconds, not {text!r}"
        )
    return seconds


def add_cluster_options(parser: argparse.ArgumentParser, workers: int) -> None:
    """Add the options that say where to compute: a local cluster or a running scheduler.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A subcommand's parser.
    workers : int
        The default of ``--workers`` (0: the local threaded scheduler).
    """
    group = parser.add_argument_group("cluster")
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=whole_number(0, "workers"),
        default=workers,
        action=LocalWorkers,
        help="start a local cluster of this many worker processes on 127.0.0.1 "
        "(0 uses the local threaded scheduler)",
    )
    where.add_argument(
        "--gpus",
        type=whole_number(1, "gpus"),
        metavar="N",
        help="start a dask-cuda LocalCUDACluster of one worker per GPU (the first N of "
        "CUDA_VISIBLE_DEVICES) and train on the GPUs",
    )
    where.add_argument(
        "--scheduler-address", help="connect to a running scheduler, e.g. tls://head:8786"
    )
    where.add_argument(
        "--scheduler-file",
        help="connect through the file a scheduler writes (dask scheduler --scheduler-file)",
    )
    group.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the scheduler file to appear and for the scheduler to answer",
    )
    group.add_argument(
        "--dashboard-address",
        default="127.0.0.1:0",
        help="where a local cluster serves its dashboard (':8787' listens on every interface)",
    )
    group.add_argument("--tls-ca-file", help="CA certificate (PEM) that signed the cluster's")
    group.add_argument("--tls-cert", help="this client's certificate (PEM)")
    group.add_argument("--tls-key", help="this client's private key (PEM), if not in --tls-cert")


def security(args: argparse.Namespace) -> Any:
    """The TLS settings the options ask for.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line, with the cluster options.

    Returns
    -------
    distributed.security.Security or None
        A ``Security`` that requires encryption, or None (no TLS option: the dask config's
        settings apply).

    Raises
    ------
    UsageError
        TLS options without a CA file and certificate, or without a running scheduler.
    RunError
        A TLS file that does not exist.
    """
    if not (args.tls_ca_file or args.tls_cert or args.tls_key):
        return None
    if not (args.tls_ca_file and args.tls_cert):
        raise UsageError(
            "TLS needs both --tls-ca-file and --tls-cert (and --tls-key unless "
            "the key is inside the certificate file)"
        )
    if not (args.scheduler_address or args.scheduler_file):
        raise UsageError(
            "the TLS options are for a running scheduler: add --scheduler-address "
            "or --scheduler-file (a local cluster listens on 127.0.0.1 only)"
        )
    for path in (args.tls_ca_file, args.tls_cert, args.tls_key):
        if path and not os.path.isfile(path):
            raise RunError(f"no TLS file at {path!r}")
    from distributed.security import Security

    return Security(
        tls_ca_file=args.tls_ca_file,
        tls_client_cert=args.tls_cert,
        tls_client_key=args.tls_key,
        require_encryption=True,
    )


def read_scheduler_file(path: str, timeout: float) -> str:
    """The address in a scheduler file, waiting for the file to appear.

    Parameters
    ----------
    path : str
        The file ``dask scheduler --scheduler-file`` writes.
    timeout : float
        Seconds to wait for it to appear.

    Returns
    -------
    str
        The scheduler's address, e.g. ``tls://head:8786``.

    Raises
    ------
    RunError
        The file did not appear in time, or is not a scheduler file.
    """
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RunError(
                f"the scheduler file {path!r} did not appear within {timeout:g} s; check that "
                "the scheduler started (its log) and writes this path on a file system shared "
                "with this machine, or raise --connect-timeout"
            )
        time.sleep(0.1)
    grace = time.monotonic() + min(_HALF_WRITTEN_GRACE_S, max(timeout, 0.1))
    while True:
        try:
            with open(path) as handle:
                address = json.load(handle)["address"]
            if isinstance(address, str) and "://" in address:
                return address
            problem = f"its address {address!r} is not a scheduler address"
        except (ValueError, KeyError, TypeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > grace:
            raise RunError(
                f"{path!r} is not a dask scheduler file ({problem}); it should be the JSON "
                'that `dask scheduler --scheduler-file` writes, with an "address"'
            )
        time.sleep(0.05)


def connect(address: str, security: Any, timeout: float) -> Any:
    """A client of the scheduler at ``address``.

    Parameters
    ----------
    address : str
        The scheduler's address.
    security : distributed.security.Security or None
        TLS settings (see :func:`security`).
    timeout : float
        Seconds to wait for the scheduler to answer.

    Returns
    -------
    distributed.Client

    Raises
    ------
    RunError
        In one line saying what to check: TLS refused or missing, timeout, unreachable.
    """
    from distributed import Client

    try:
        return Client(address, security=security, timeout=timeout)
    except TypeError as exc:
        if "TLS" not in str(exc):
            raise
        raise RunError(
            f"the scheduler at {address} speaks TLS: give --tls-ca-file, --tls-cert and "
            "--tls-key (or set distributed.comm.tls in your dask config)"
        ) from None
    except RuntimeError as exc:
        if "encryption required" not in str(exc):
            raise
        raise RunError(
            f"refusing to connect to {address} without encryption: with TLS options the "
            "scheduler address must start with tls://"
        ) from None
    except (OSError, TimeoutError) as exc:
        raise RunError(
            f"cannot connect to the scheduler at {address} (timeout {timeout:g} s; "
            f"{type(exc).__name__}: {exc}); check that it is running, the address and port, "
            "the firewall, and that client and scheduler agree on TLS"
        ) from None


@contextlib.contextmanager
def dask_cluster(args: argparse.Namespace) -> Iterator[str]:
    """Connect to (or start) the cluster the options ask for, for the block's duration.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line, with the cluster options.

    Yields
    ------
    str
        The cluster in words, e.g. "a local cluster of 2 worker processes (...)".
    """
    tls = security(args)
    if args.scheduler_address or args.scheduler_file:
        address = args.scheduler_address or read_scheduler_file(
            args.scheduler_file, args.connect_timeout
        )
        with connect(address, tls, args.connect_timeout) as client:
            yield f"scheduler {client.scheduler.address}"
        return
    if getattr(args, "gpus", None):
        from dasksom.training.gpu import local_cuda_cluster

        with local_cuda_cluster(n_gpus=args.gpus, dashboard_address=args.dashboard_address):
            yield f"a local dask-cuda cluster of {args.gpus} GPU worker(s)"
        return
    if args.workers <= 0:
        yield "the local threaded scheduler"
        return
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=args.dashboard_address,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield f"a local cluster of {args.workers} worker processes ({client.dashboard_link})"

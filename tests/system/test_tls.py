"""``dasksom train`` on a TLS cluster started as separate processes, and the refusals: no
client certificate, a certificate from another CA, and plain TCP, each without a fallback."""

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import dasksom

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
pytestmark = pytest.mark.skipif(
    shutil.which(OPENSSL) is None, reason="the openssl command (to make certificates) is absent"
)
EC_KEY = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"


def _openssl(args, cwd):
    subprocess.run([OPENSSL, *args.split()], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder, name):
    """A CA and one certificate it signed (for scheduler, worker and client alike)."""
    folder.mkdir()
    _openssl(f"req -x509 {EC_KEY} -keyout ca.key -out ca.pem -days 2 -subj /CN={name}-ca", folder)
    _openssl(f"req {EC_KEY} -keyout node.key -out node.csr -subj /CN=127.0.0.1", folder)
    _openssl(
        "x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out node.pem -days 2",
        folder,
    )
    return {
        "--tls-ca-file": str(folder / "ca.pem"),
        "--tls-cert": str(folder / "node.pem"),
        "--tls-key": str(folder / "node.key"),
    }


def _flags(tls):
    return [part for option, path in tls.items() for part in (option, path)]


def spawn(module, *args):
    """``python -m distributed.cli.MODULE ARGS`` as a background process, output dropped."""
    command = [sys.executable, "-m", f"distributed.cli.{module}", *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(processes):
    """Terminate ``processes``, killing any that do not end within 15 s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A ``tls://127.0.0.1`` scheduler and one worker, as separate processes."""
    folder = tmp_path_factory.mktemp("tls")
    tls = make_certificates(folder / "good", "dasksom")
    scheduler_file = folder / "scheduler.json"
    local = ["--host", "127.0.0.1", "--scheduler-file", scheduler_file]
    processes = []
    try:
        scheduler = [*local, "--port", 0, "--dashboard-address", "127.0.0.1:0"]
        processes.append(spawn("dask_scheduler", *_flags(tls), *scheduler))
        worker = [*local, "--nthreads", 1, "--no-nanny", "--no-dashboard"]
        processes.append(spawn("dask_worker", *_flags(tls), *worker))
        deadline = time.monotonic() + 30
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        # The scheduler writes the file in one go; let it finish.
        time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        yield {"tls": tls, "file": str(scheduler_file), "address": address}
    finally:
        stop(processes)


def dasksom_cli(*args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "dasksom.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_train_over_tls_gives_the_local_map(tls_cluster, tmp_path, blobs):
    assert tls_cluster["address"].startswith("tls://127.0.0.1:")
    np.save(tmp_path / "x.npy", blobs)
    result = dasksom_cli(
        "train",
        tmp_path / "x.npy",
        "--scheduler-file",
        tls_cluster["file"],
        *_flags(tls_cluster["tls"]),
        "--size",
        "3x4",
        "--epochs",
        "2",
        "--no-plots",
        "--output",
        tmp_path / "out",
    )
    assert result.returncode == 0, result.stderr
    assert f"on scheduler {tls_cluster['address']}" in result.stdout
    on_cluster = dasksom.load(tmp_path / "out" / "map.npz").weights_
    local = dasksom.SOM(3, 4, init="pca", epochs=2, random_state=0).fit(blobs).weights_
    np.testing.assert_allclose(on_cluster, local, rtol=1e-6)


def _refused(result):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    return result.stderr


def test_a_client_without_certificates_is_refused(tls_cluster, tmp_path, blobs):
    np.save(tmp_path / "x.npy", blobs)
    stderr = _refused(
        dasksom_cli(
            "train",
            tmp_path / "x.npy",
            "--scheduler-file",
            tls_cluster["file"],
            "--connect-timeout",
            "5",
            "--output",
            tmp_path / "out",
        )
    )
    assert "speaks TLS" in stderr and "--tls-cert" in stderr
    assert not (tmp_path / "out" / "map.npz").exists()


def test_plain_tcp_to_the_tls_scheduler_fails_without_fallback(tls_cluster, tmp_path, blobs):
    np.save(tmp_path / "x.npy", blobs)
    tcp = tls_cluster["address"].replace("tls://", "tcp://")
    stderr = _refused(
        dasksom_cli(
            "train",
            tmp_path / "x.npy",
            "--scheduler-address",
            tcp,
            "--connect-timeout",
            "3",
            "--output",
            tmp_path / "plain",
        )
    )
    assert f"cannot connect to the scheduler at {tcp}" in stderr
    # With certificates, a tcp:// address is refused before anything is sent.
    stderr = _refused(
        dasksom_cli(
            "train",
            tmp_path / "x.npy",
            "--scheduler-address",
            tcp,
            *_flags(tls_cluster["tls"]),
            "--output",
            tmp_path / "plain",
        )
    )
    assert "without encryption" in stderr


def test_a_certificate_from_another_ca_is_refused(tls_cluster, tmp_path, blobs):
    np.save(tmp_path / "x.npy", blobs)
    stranger = make_certificates(tmp_path / "stranger", "stranger")
    stderr = _refused(
        dasksom_cli(
            "train",
            tmp_path / "x.npy",
            "--scheduler-address",
            tls_cluster["address"],
            *_flags(stranger),
            "--connect-timeout",
            "3",
            "--output",
            tmp_path / "o",
        )
    )
    assert f"cannot connect to the scheduler at {tls_cluster['address']}" in stderr

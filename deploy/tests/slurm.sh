#!/usr/bin/env bash
# A one-node Slurm on localhost, for real: install Debian's slurm-wlm and munge, start munged,
# slurmctld and slurmd with a generated slurm.conf in a temporary folder, and train with
# deploy/slurm.sh (sbatch, both memory styles), cancel-and-resume, two jobs in a row, and
# dask-jobqueue's SLURMCluster (deploy/slurm_jobqueue.py).
#
#   bash deploy/tests/slurm.sh          # from the repository root, as root; a few minutes
#
# Exits 0 only when every check passed; prints "SKIP: <reason>" and exits 0 where it cannot run
# (not root, no apt-get, Slurm not installable).  The daemons are stopped at the end.  Set
# DASKSOM_SLURM_KEEP=1 to keep the temporary folder (logs, job outputs) after a success.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
START=$SECONDS
LIMIT=${DASKSOM_SLURM_TEST_LIMIT:-600}   # seconds for the whole test

say() { printf '[slurm test %4ds] %s\n' "$(( SECONDS - START ))" "$*"; }
skip() { echo "SKIP: $*"; exit 0; }
fail() { echo "FAIL: $*" >&2; exit 1; }
left() { echo $(( LIMIT - (SECONDS - START) )); }

[[ $(id -u) -eq 0 ]] || skip "needs root (it installs packages and starts munged, slurmctld, slurmd)"

# --- Slurm and munge from Debian -------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
        || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || skip "no apt-get to install slurm-wlm and munge"
    say "installing slurm-wlm and munge with apt-get"
    timeout 300 apt-get update -qq || skip "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive timeout 400 apt-get install -y -qq slurm-wlm munge >/dev/null \
        || skip "apt-get cannot install slurm-wlm and munge"
fi
say "$(slurmd -V) and $(munged -V 2>&1 | head -n 1)"

# --- the project's virtual environment, with dask-jobqueue -----------------------------------
if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv (pip install -e '.[test]')"
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet -e '.[test]'
fi
if ! .venv/bin/python -c "import dask_jobqueue" 2>/dev/null; then
    say "installing the slurm extra (dask-jobqueue) into .venv"
    .venv/bin/python -m pip install --quiet -e '.[slurm]'
fi
.venv/bin/python -c "import dasksom, dask_jobqueue" || fail "dasksom or dask_jobqueue does not import"
PY=$REPO/.venv/bin/python
export PATH="$REPO/.venv/bin:$PATH"

# --- a one-node Slurm on localhost ----------------------------------------------------------
T=$(mktemp -d /tmp/dasksom-slurm.XXXXXX)
mkdir -p "$T/munge" "$T/state" "$T/spool" "$T/jobs"
export SLURM_CONF=$T/slurm.conf
say "temporary folder $T"

teardown() {
    local status=$? name
    trap - EXIT INT TERM
    if [[ -S $T/munge/munge.socket ]] && [[ -s $T/slurmctld.pid ]]; then
        scancel --quiet --user=root 2>/dev/null || true
        sleep 2
    fi
    for name in slurmd slurmctld munged; do
        if [[ -s $T/$name.pid ]]; then
            kill -TERM "$(cat "$T/$name.pid")" 2>/dev/null || true
        fi
    done
    sleep 1
    if (( status != 0 )); then
        for name in slurmctld slurmd munged; do
            [[ -f $T/$name.log ]] && { echo "--- last lines of $T/$name.log"; tail -n 15 "$T/$name.log"; }
        done
        echo "the Slurm daemons are stopped; logs and job outputs are kept in $T"
    elif [[ -z ${DASKSOM_SLURM_KEEP:-} ]]; then
        rm -rf "$T"
    else
        echo "kept $T"
    fi
    say "done, exit $status"
}
trap teardown EXIT
trap 'exit 130' INT TERM

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
NODE=$(hostname -s)
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
while [[ $SLURMD_PORT == "$CTLD_PORT" ]]; do SLURMD_PORT=$(free_port); done

dd if=/dev/urandom of="$T/munge.key" bs=1024 count=1 status=none
chmod 600 "$T/munge.key"
munged --force --key-file "$T/munge.key" --socket "$T/munge/munge.socket" \
    --pid-file "$T/munged.pid" --log-file "$T/munged.log" --seed-file "$T/munged.seed"

# Containers without systemd: no cgroups (proctrack/linuxproc, task/none), no accounting
# database (job states come from scontrol while slurmctld remembers them, MinJobAge).
cat > "$SLURM_CONF" <<CONF
ClusterName=dasksomtest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.socket
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
KillWait=5
MinJobAge=3600
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=6 RealMemory=6000 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=30 State=UP
CONF
slurmctld -c -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for (( i = 0; i < 30; i++ )); do
    [[ $(sinfo -h -o %T 2>/dev/null) == idle ]] && break
    sleep 1
done
[[ $(sinfo -h -o %T 2>/dev/null) == idle ]] || fail "the node did not come up idle: $(sinfo 2>&1)"
say "slurmctld (port $CTLD_PORT) and slurmd (port $SLURMD_PORT) up:"
sinfo

# --- helpers ---------------------------------------------------------------------------------
DEADLINE=$(( SECONDS + LIMIT ))
job_field() { scontrol show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# submit NAME SBATCH-OPTIONS... -- SCRIPT-ARGS...: prints the job id
submit() {
    local name=$1
    shift
    local -a opts=()
    while [[ $1 != -- ]]; do opts+=("$1"); shift; done
    shift
    sbatch --parsable --time=10 --chdir="$REPO" --output="$T/jobs/$name-%j.out" \
        "${opts[@]}" deploy/slurm.sh "$@"
}

# wait_job ID [SECONDS]: waits until the job has ended; prints STATE EXITCODE
wait_job() {
    local id=$1 until=$(( SECONDS + ${2:-240} )) state
    (( until > DEADLINE )) && until=$DEADLINE
    while true; do
        state=$(job_field "$id" JobState)
        case $state in
            PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED|RESIZING|SUSPENDED|"") ;;
            *) echo "$state $(job_field "$id" ExitCode)"; return 0 ;;
        esac
        if (( SECONDS >= until )); then
            scancel "$id" || true
            fail "job $id still $state after the time allowed; cancelled it"
        fi
        sleep 1
    done
}

# expect_state ID "STATE EXITCODE" NAME  (the second argument is a pattern)
expect_state() {
    local got
    got=$(wait_job "$1")
    # shellcheck disable=SC2053  # a pattern on purpose
    [[ $got == $2 ]] || { tail -n 30 "$T"/jobs/*-"$1".out >&2; fail "$3: job $1 ended $got, expected $2"; }
    say "$3: job $1 ended $got"
}

# check_map OUTPUT EPOCHS HxW [plots]: the map, its summary and (optionally) the pictures
check_map() {
    "$PY" - "$@" <<'PYTHON'
import json
import sys
from pathlib import Path

import numpy as np

import dasksom

out, epochs, size = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
height, width = (int(x) for x in size.split("x"))
m = dasksom.load(out / "map.npz")
assert m.n_iter_ == epochs, f"{out}: {m.n_iter_} epochs, expected {epochs}"
assert m.weights_.shape == (height * width, 8), f"{out}: weights {m.weights_.shape}"
assert np.isfinite(m.weights_).all(), f"{out}: weights not finite"
summary = json.loads((out / "summary.json").read_text())
assert summary["epochs"] == epochs and summary["size"] == [height, width], summary
assert np.isfinite(summary["quantization_error"]), summary
if len(sys.argv) > 4:
    missing = [p for p in summary["plots"] if not Path(p).is_file()]
    assert not missing and len(summary["plots"]) >= 4, f"pictures missing: {missing}"
print(f"  map {out / 'map.npz'}: {m.n_iter_} epochs, weights {m.weights_.shape}, "
      f"quantization error {summary['quantization_error']:.4f}")
PYTHON
}

checkpoint_epochs() {
    "$PY" -c 'import sys, dasksom; print(len(dasksom.load(sys.argv[1]).history_))' "$1"
}

# No scheduler or worker of a finished job may outlive it (the old fixed-port clash).
check_no_leftovers() {
    local id=$1
    if pgrep -f "scheduler-$id-" >/dev/null; then
        pgrep -af "scheduler-$id-" >&2
        fail "job $id left Dask processes behind"
    fi
    if compgen -G "$2/scheduler-$id-*.json" >/dev/null; then
        fail "job $id left its scheduler file behind"
    fi
}

DATA=$T/data.npy
"$PY" -c 'import sys, numpy as np
np.save(sys.argv[1], np.random.default_rng(0).random((2000, 8), dtype=np.float32))' "$DATA"
say "data: 2,000 x 8 float32 in $DATA"

# --- 1. --cpus-per-task/--mem, then 2. --mem-per-cpu without -c: two jobs in a row -----------
say "1. sbatch -n 2 -c 1 --mem=1000M deploy/slurm.sh DATA OUT 4x4 --epochs 4"
A=$(submit mem -n 2 -c 1 --mem=1000M -- "$DATA" "$T/out-mem" 4x4 --epochs 4)
expect_state "$A" "COMPLETED 0:0" "--mem style"
check_map "$T/out-mem" 4 4x4 plots
grep -q "2 workers x 1 threads, memory limit 450MiB each" "$T/jobs/mem-$A.out" \
    || fail "job $A: expected 2 workers of 450MiB each"
check_no_leftovers "$A" "$T/out-mem"
say "  job $A left no scheduler, worker or scheduler file behind"

say "2. right after, on the same node: sbatch -n 2 --mem-per-cpu=500M (no -c) ... --epochs 3"
B=$(submit mempercpu -n 2 --mem-per-cpu=500M -- "$DATA" "$T/out-mempercpu" 4x4 --epochs 3 --no-plots)
expect_state "$B" "COMPLETED 0:0" "--mem-per-cpu style, second job in a row"
check_map "$T/out-mempercpu" 3 4x4
grep -q "2 workers joined" "$T/jobs/mempercpu-$B.out" || fail "job $B: its workers did not join"
grep -q "memory limit 450MiB each" "$T/jobs/mempercpu-$B.out" \
    || fail "job $B: expected 450MiB per worker"
check_no_leftovers "$B" "$T/out-mempercpu"
say "  job $B started its own scheduler after job $A on the same node"

# --- 3. a scheduler that never comes up fails the job instead of hanging ----------------------
say "3. a scheduler that cannot bind (DASKSOM_SCHEDULER_HOST=no-such-host.invalid)"
C=$(DASKSOM_SCHEDULER_HOST=no-such-host.invalid DASKSOM_WAIT_TIMEOUT=60 \
    submit nosched -n 2 --mem-per-cpu=500M -- "$DATA" "$T/out-nosched" 4x4 --epochs 3)
expect_state "$C" "FAILED 1:0" "no scheduler"
grep -q "the scheduler exited before writing" "$T/jobs/nosched-$C.out" \
    || fail "job $C: no message about the scheduler"
[[ ! -e $T/out-nosched/map.npz ]] || fail "job $C wrote a map without a scheduler"

# --- 3b. a worker that dies mid-run ends the job instead of leaving the driver waiting -------
say "3b. kill -9 one worker (its dask worker process) after the first checkpoint"
K=$(submit workerdeath -n 2 -c 1 --mem=1000M -- "$DATA" "$T/out-workerdeath" 8x8 --epochs 40 \
    --chunks 50 --no-plots)
until [[ -e $T/out-workerdeath/checkpoint.npz ]]; do
    [[ $(job_field "$K" JobState) == @(PENDING|RUNNING|CONFIGURING) ]] \
        || fail "job $K ended ($(job_field "$K" JobState)) before its first checkpoint"
    (( SECONDS < DEADLINE )) || fail "job $K wrote no checkpoint in time"
    sleep 0.2
done
VICTIM=$(pgrep -f "dask worker --scheduler-file $T/out-workerdeath/" | head -n 1)
[[ -n $VICTIM ]] || fail "job $K: no worker process found"
kill -KILL "$VICTIM"
expect_state "$K" "FAILED 1:0" "worker killed"
grep -q "the workers' step ended during training" "$T/jobs/workerdeath-$K.out" \
    || fail "job $K: no message about the workers"
check_no_leftovers "$K" "$T/out-workerdeath"

# --- 4. scancel mid-run and resubmit, or scontrol requeue: both resume and end with the map --
# --- of an uninterrupted job ------------------------------------------------------------------
RESUME_ARGS=(8x8 --epochs 40 --chunks 50 --no-plots)
say "4. three identical jobs (${RESUME_ARGS[*]}): one runs through, one is cancelled and"
say "   resubmitted, one is requeued (scontrol requeue; the script has #SBATCH --requeue)"
R=$(submit reference -n 2 -c 1 --mem=1000M -- "$DATA" "$T/out-reference" "${RESUME_ARGS[@]}")
I=$(submit interrupted -n 2 -c 1 --mem=1000M -- "$DATA" "$T/out-interrupted" "${RESUME_ARGS[@]}")
Q=$(submit requeued --open-mode=append -n 2 -c 1 --mem=1000M -- \
    "$DATA" "$T/out-requeued" "${RESUME_ARGS[@]}")
say "  submitted jobs $R (reference), $I (to cancel), $Q (to requeue)"

# wait_checkpoint ID OUTPUT: the checkpoint is written after every epoch; once it exists, at
# least one epoch is done.
wait_checkpoint() {
    until [[ -e $2/checkpoint.npz ]]; do
        [[ $(job_field "$1" JobState) == @(PENDING|RUNNING|CONFIGURING) ]] \
            || fail "job $1 ended ($(job_field "$1" JobState)) before its first checkpoint"
        (( SECONDS < DEADLINE )) || fail "job $1 wrote no checkpoint in time"
        sleep 0.2
    done
}

wait_checkpoint "$I" "$T/out-interrupted"
scancel "$I"
expect_state "$I" "CANCELLED *" "scancel after the first checkpoint"
# The first run's checkpoint, to compare with the final map's history: a resumed run keeps
# those epoch records (their timings included) as they were; a restart would rewrite them.
cp "$T/out-interrupted/checkpoint.npz" "$T/interrupted-first-run.npz"
DONE=$(checkpoint_epochs "$T/interrupted-first-run.npz")
(( DONE >= 1 && DONE < 40 )) || fail "job $I: checkpoint holds $DONE of 40 epochs; not mid-run"
[[ ! -e $T/out-interrupted/map.npz ]] || fail "the cancelled job $I wrote a map"
check_no_leftovers "$I" "$T/out-interrupted"
say "  job $I was cancelled with $DONE of 40 epochs in its checkpoint"
I2=$(submit interrupted -n 2 -c 1 --mem=1000M -- "$DATA" "$T/out-interrupted" "${RESUME_ARGS[@]}")
say "  resubmitted the same command as job $I2"

wait_checkpoint "$Q" "$T/out-requeued"
scontrol requeue "$Q"
say "  requeued job $Q after its first checkpoint"
# Slurm holds a requeued job back for a couple of minutes (BeginTime); let it start now.
until [[ $(job_field "$Q" JobState) == PENDING ]]; do
    (( SECONDS < DEADLINE )) || fail "job $Q did not go back to PENDING"
    sleep 0.5
done
cp "$T/out-requeued/checkpoint.npz" "$T/requeued-first-run.npz"
say "  job $Q is pending again with $(checkpoint_epochs "$T/requeued-first-run.npz") of 40" \
    "epochs in its checkpoint; scontrol update JobId=$Q StartTime=now"
scontrol update JobId="$Q" StartTime=now

expect_state "$I2" "COMPLETED 0:0" "resubmitted job"
expect_state "$Q" "COMPLETED 0:0" "requeued job"
expect_state "$R" "COMPLETED 0:0" "uninterrupted job"
[[ $(job_field "$Q" Restarts) == 1 ]] || fail "job $Q: Restarts=$(job_field "$Q" Restarts)"
for out in reference interrupted requeued; do
    check_map "$T/out-$out" 40 8x8
done
grep -q "(restart 1)" "$T/jobs/requeued-$Q.out" || fail "job $Q: no second run (restart 1)"
for run in interrupted-"$I2" requeued-"$Q"; do
    say "  $run: $(grep -m 1 -i "resum" "$T/jobs/$run.out" || true)"
done
"$PY" - "$T" <<'PYTHON'
import sys
from pathlib import Path

import numpy as np

import dasksom

T = Path(sys.argv[1])
reference = dasksom.load(T / "out-reference/map.npz")
for name in ("interrupted", "requeued"):
    m = dasksom.load(T / f"out-{name}/map.npz")
    first = list(dasksom.load(T / f"{name}-first-run.npz").history_)
    assert 1 <= len(first) < 40, f"{name}: the first run stopped after {len(first)} epochs"
    assert list(m.history_[: len(first)]) == first, f"{name}: the rerun did not resume"
    assert np.array_equal(reference.weights_, m.weights_), f"{name}: map differs from reference"
    print(f"  {name}: the rerun kept the first run's {len(first)} epochs and trained "
          f"{len(m.history_) - len(first)} more; weights np.array_equal to the uninterrupted map")
PYTHON

# --- 5. dask-jobqueue: SLURMCluster from Python ---------------------------------------------
say "5. deploy/slurm_jobqueue.py: SLURMCluster, 2 worker jobs of 1 core and 1GB"
"$PY" deploy/slurm_jobqueue.py "$DATA" "$T/out-jq" --dry-run --memory 1GB \
    --job-extra=--mem-per-cpu=500M > "$T/jobs/jq-dry-run.sh"
if ! grep -q -- "--mem-per-cpu=500M" "$T/jobs/jq-dry-run.sh" \
        || grep -q -- "--mem=" "$T/jobs/jq-dry-run.sh"; then
    cat "$T/jobs/jq-dry-run.sh"
    fail "the --mem-per-cpu worker job script is wrong"
fi
timeout "$(left)" "$PY" deploy/slurm_jobqueue.py "$DATA" "$T/out-jq" --size 4x4 --epochs 3 \
    --jobs 2 --cores 1 --memory 1GB --processes 1 --walltime 00:10:00 --timeout 120 \
    > "$T/jobs/jobqueue.out" 2>&1 || { tail -n 30 "$T/jobs/jobqueue.out"; fail "slurm_jobqueue.py failed"; }
grep "^slurm_jobqueue:" "$T/jobs/jobqueue.out"
"$PY" - "$T/out-jq" <<'PYTHON'
import json
import subprocess
import sys
from pathlib import Path

import dasksom

out = Path(sys.argv[1])
m = dasksom.load(out / "map.npz")
summary = json.loads((out / "summary.json").read_text())
assert m.n_iter_ == 3 and m.weights_.shape == (16, 8), (m.n_iter_, m.weights_.shape)
assert summary["epochs"] == 3 and len(summary["slurm_jobs"]) == 2, summary
for job in summary["slurm_jobs"]:
    info = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert "JobName=dask-worker" in info, info
print(f"  map {out / 'map.npz'}: 3 epochs, weights {m.weights_.shape}, "
      f"worker jobs {', '.join(summary['slurm_jobs'])} (JobName=dask-worker)")
PYTHON

say "PASS: all Slurm checks passed in $(( SECONDS - START ))s"

#!/usr/bin/env bash
# Train a map as a Slurm batch job: a Dask scheduler in the batch step, one Dask worker per
# task (srun), then the dasksom driver.  Submit from an environment where `dask` and `dasksom`
# are on PATH (an activated virtual environment; sbatch exports it to the job):
#
#   sbatch --nodes=4 --ntasks-per-node=2 --cpus-per-task=16 --mem=120G \
#          deploy/slurm.sh /scratch/data.zarr /scratch/som-run 100x100
#   sbatch --ntasks=8 --mem-per-cpu=4G deploy/slurm.sh /scratch/data.zarr /scratch/som-run 100x100
#
# Arguments: DATA OUTPUT [SIZE [extra `dasksom train` options ...]], e.g. `... 20x20 --epochs 5`.
# OUTPUT must be on a filesystem every node sees (it also holds the scheduler file).
#
# Each worker runs --cpus-per-task threads (1 if -c is not given) and gets its share of the
# memory: --mem-per-cpu x cpus-per-task, or --mem divided by the tasks on the busiest node,
# less 10% headroom.  The driver waits until every worker has joined (so that persist="auto"
# sees the whole cluster) and fails after DASKSOM_WAIT_TIMEOUT seconds (default 300) if the
# scheduler or the workers never come up.  The scheduler listens on a free port (the scheduler
# file carries its address) and it and the workers are stopped when the script ends or is
# cancelled.
#
# Resubmitting the same command after a failure or a cancel resumes from the last epoch's
# checkpoint (dasksom train keeps OUTPUT/checkpoint.npz) and ends with the same map.  With
# --requeue (set below) Slurm puts the job back in the queue after a node failure or
# preemption (or `scontrol requeue JOBID`); the rerun starts a fresh scheduler (its file is
# named per job and per SLURM_RESTART_COUNT) and resumes from the checkpoint the same way.
#
# Optional environment: DASKSOM_SCHEDULER_HOST (address the scheduler binds to; default this
# node's hostname) or DASKSOM_INTERFACE (a network interface such as ib0, for the scheduler and
# the workers), DASKSOM_WAIT_TIMEOUT (seconds), DASKSOM_PYTHON (interpreter with distributed;
# default `python` on PATH).
#SBATCH --job-name=dasksom
#SBATCH --time=04:00:00
#SBATCH --requeue
set -euo pipefail

DATA=${1:?usage: sbatch [options] deploy/slurm.sh DATA OUTPUT [SIZE [dasksom train options]]}
OUTPUT=${2:?usage: sbatch [options] deploy/slurm.sh DATA OUTPUT [SIZE [dasksom train options]]}
SIZE=${3:-50x50}
shift $(( $# < 3 ? $# : 3 ))
: "${SLURM_JOB_ID:?run this script with sbatch}"

NTASKS=${SLURM_NTASKS:-1}
CPUS_PER_TASK=${SLURM_CPUS_PER_TASK:-1}
TIMEOUT=${DASKSOM_WAIT_TIMEOUT:-300}
PYTHON=${DASKSOM_PYTHON:-$(command -v python || command -v python3)}

# The most tasks any node of the job runs: SLURM_TASKS_PER_NODE looks like "2(x3),1".
max_tasks_per_node() {
    local most=1 part count
    local -a parts
    IFS=, read -r -a parts <<< "${SLURM_TASKS_PER_NODE:-1}"
    for part in "${parts[@]}"; do
        count=${part%%(*}
        if (( count > most )); then most=$count; fi
    done
    echo "$most"
}

# Memory per worker in MiB (Slurm's M is MiB), or "auto" where the job asked for none.
if [[ -n ${SLURM_MEM_PER_CPU:-} ]]; then
    MEMORY_LIMIT="$(( SLURM_MEM_PER_CPU * CPUS_PER_TASK * 9 / 10 ))MiB"
elif [[ -n ${SLURM_MEM_PER_NODE:-} && ${SLURM_MEM_PER_NODE} -gt 0 ]]; then
    TASKS_ON_BUSIEST_NODE=$(max_tasks_per_node)
    MEMORY_LIMIT="$(( SLURM_MEM_PER_NODE * 9 / (10 * TASKS_ON_BUSIEST_NODE) ))MiB"
else
    MEMORY_LIMIT=auto
fi

if [[ -n ${DASKSOM_INTERFACE:-} ]]; then
    BIND=(--interface "$DASKSOM_INTERFACE" --dashboard-address :0)
    WORKER_BIND=(--interface "$DASKSOM_INTERFACE")
else
    HOST=${DASKSOM_SCHEDULER_HOST:-$(hostname)}
    BIND=(--host "$HOST" --dashboard-address "$HOST:0")
    WORKER_BIND=()
fi

mkdir -p "$OUTPUT"
# A requeued job gets the same job id: name the file per restart, and never read a stale one.
SCHEDULER_FILE="$OUTPUT/scheduler-$SLURM_JOB_ID-${SLURM_RESTART_COUNT:-0}.json"
rm -f "$SCHEDULER_FILE"

SCHEDULER_PID=
WORKERS_PID=
DRIVER_PID=
# shellcheck disable=SC2317  # called from the traps
cleanup() {
    local pid waited
    trap - EXIT TERM INT
    # The driver, then the scheduler: the workers see it close and end the srun step themselves;
    # srun is told to end it after 10 seconds if they have not.
    for pid in $DRIVER_PID $SCHEDULER_PID; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $WORKERS_PID ]]; then
        for (( waited = 0; waited < 10; waited++ )); do
            kill -0 "$WORKERS_PID" 2>/dev/null || break
            sleep 1
        done
        kill -TERM "$WORKERS_PID" 2>/dev/null || true
        wait "$WORKERS_PID" 2>/dev/null || true
    fi
    rm -f "$SCHEDULER_FILE"
}
trap cleanup EXIT
trap 'echo "dasksom slurm: signalled, stopping" >&2; cleanup; exit 143' TERM INT

echo "dasksom slurm: job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}) on" \
     "${SLURM_JOB_NODELIST:-$(hostname)}: $NTASKS workers x $CPUS_PER_TASK threads," \
     "memory limit $MEMORY_LIMIT each"

dask scheduler --scheduler-file "$SCHEDULER_FILE" --port 0 "${BIND[@]}" &
SCHEDULER_PID=$!

waited=0
until [[ -s $SCHEDULER_FILE ]]; do
    if ! kill -0 "$SCHEDULER_PID" 2>/dev/null; then
        echo "dasksom slurm: the scheduler exited before writing $SCHEDULER_FILE" >&2
        exit 1
    fi
    if (( waited >= TIMEOUT )); then
        echo "dasksom slurm: no scheduler file after ${TIMEOUT}s" >&2
        exit 1
    fi
    sleep 1
    waited=$(( waited + 1 ))
done

# One worker per task.  srun is told the cpus per task (Slurm 22.05+ does not pass the job's
# -c on to steps).  BLAS stays at one thread per Dask thread (the nanny sets OMP_NUM_THREADS).
# Freed blocks under 32 MiB are reused, not page-faulted anew (training.engine.WORKER_MMAP_THRESHOLD).
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-33554432}
srun --ntasks="$NTASKS" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
    dask worker --scheduler-file "$SCHEDULER_FILE" "${WORKER_BIND[@]}" \
    --nthreads "$CPUS_PER_TASK" --memory-limit "$MEMORY_LIMIT" &
WORKERS_PID=$!

"$PYTHON" - "$SCHEDULER_FILE" "$NTASKS" "$TIMEOUT" <<'EOF'
import sys

from distributed import Client

scheduler_file, n_workers, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with Client(scheduler_file=scheduler_file, timeout=timeout) as client:
    try:
        client.wait_for_workers(n_workers, timeout=timeout)
    except TimeoutError:
        got = len(client.nthreads())
        sys.exit(f"dasksom slurm: {got} of {n_workers} workers joined within {timeout:g}s")
    print(f"dasksom slurm: {n_workers} workers joined {client.scheduler.address}", flush=True)
EOF

# In the background so that a TERM (scancel, preemption) runs the trap at once.  If the
# workers' step ends while the driver runs (a worker died and srun ended the step), no worker
# will come back: stop instead of waiting for the wall-time limit.
dasksom train "$DATA" --size "$SIZE" --scheduler-file "$SCHEDULER_FILE" --output "$OUTPUT" "$@" &
DRIVER_PID=$!
while kill -0 "$DRIVER_PID" 2>/dev/null; do
    if ! kill -0 "$WORKERS_PID" 2>/dev/null; then
        echo "dasksom slurm: the workers' step ended during training; stopping" >&2
        exit 1
    fi
    sleep 2 & wait $! || true
done
status=0
wait "$DRIVER_PID" || status=$?
DRIVER_PID=
exit "$status"

#!/usr/bin/env bash
# Map a long list of FCS files onto a saved FlowSOM model as a Slurm job array: each array
# task maps one batch of the list (the files at positions I, I + K, I + 2K ... from 0, for
# task I of K) with `dasksom cytometry map` on a local Dask cluster of its own, and writes
# OUTPUT/batch-IIIII-of-KKKKK/ (tables/, batch.json, and cells/ with --cells).  Submit from an
# environment where `dasksom` is on PATH (an activated virtual environment; sbatch exports it):
#
#   find /scratch/fcs -name '*.fcs' | sort > /scratch/files.txt      # one path per line
#   sbatch --array=0-31 --cpus-per-task=8 --mem=32G \
#          deploy/slurm_cytometry_map.sh /scratch/model /scratch/files.txt /scratch/mapped
#   sbatch --array=0-99%20 --cpus-per-task=4 --mem-per-cpu=4G \
#          deploy/slurm_cytometry_map.sh /scratch/model /scratch/files.txt /scratch/mapped --cells
#
# Arguments: MODEL LIST OUTPUT [extra `dasksom cytometry map` options], MODEL being the folder
# `dasksom cytometry train -o` wrote.  MODEL, LIST, the files and OUTPUT must be on a file
# system every node sees.  The batch is the task's place in the array (SLURM_ARRAY_TASK_ID,
# counted from SLURM_ARRAY_TASK_MIN in steps of SLURM_ARRAY_TASK_STEP) and the number of
# batches is SLURM_ARRAY_TASK_COUNT, so any range works (--array=1-32 as well as 0-31, a
# throttle such as %20 too); a task whose batch has no file exits 0 and writes nothing.
#
# Each task writes only its own folder, atomically: the batches never collide, a task that
# fails or is cancelled leaves no half-written folder, and rerunning it (or a requeue, set
# below) replaces its folder whole.  To rerun some tasks alone, keep the batch count of the
# first submission: with DASKSOM_BATCHES set, a task's batch is its SLURM_ARRAY_TASK_ID itself
# (the ids of a first array that started at 0):
#
#   DASKSOM_BATCHES=32 sbatch --array=7,12 --cpus-per-task=8 --mem=32G \
#          deploy/slurm_cytometry_map.sh /scratch/model /scratch/files.txt /scratch/mapped
#
# Optional environment: DASKSOM_WORKERS (local worker processes; default --cpus-per-task, or 0
# for the threaded scheduler when the task has one CPU), DASKSOM_BATCHES (see above).
#SBATCH --job-name=dasksom-map
#SBATCH --time=02:00:00
#SBATCH --requeue
set -euo pipefail

USAGE="usage: sbatch --array=0-K-1 [options] deploy/slurm_cytometry_map.sh MODEL LIST OUTPUT"
USAGE+=" [dasksom cytometry map options]"
MODEL=${1:?$USAGE}
LIST=${2:?$USAGE}
OUTPUT=${3:?$USAGE}
shift 3
: "${SLURM_ARRAY_TASK_ID:?submit this script as a job array: $USAGE}"

if [[ -n ${DASKSOM_BATCHES:-} ]]; then
    BATCHES=$DASKSOM_BATCHES
    BATCH=$SLURM_ARRAY_TASK_ID
else
    BATCHES=${SLURM_ARRAY_TASK_COUNT:?Slurm did not set SLURM_ARRAY_TASK_COUNT; set DASKSOM_BATCHES}
    BATCH=$(( (SLURM_ARRAY_TASK_ID - ${SLURM_ARRAY_TASK_MIN:-0}) / ${SLURM_ARRAY_TASK_STEP:-1} ))
fi

CPUS=${SLURM_CPUS_PER_TASK:-1}
if (( CPUS > 1 )); then DEFAULT_WORKERS=$CPUS; else DEFAULT_WORKERS=0; fi
WORKERS=${DASKSOM_WORKERS:-$DEFAULT_WORKERS}

echo "dasksom slurm: array job ${SLURM_ARRAY_JOB_ID:-?} task $SLURM_ARRAY_TASK_ID on $(hostname):" \
     "batch $BATCH of $BATCHES of $LIST, $WORKERS workers"

# exec: a TERM (scancel, preemption) goes straight to dasksom, which leaves no partial output.
exec dasksom cytometry map "$MODEL" --files-from "$LIST" --batch "$BATCH" --batches "$BATCHES" \
    --output "$OUTPUT" --workers "$WORKERS" "$@"

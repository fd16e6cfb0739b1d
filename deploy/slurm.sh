#!/usr/bin/env bash
# Train a map as a Slurm batch job: one Dask scheduler and one worker per task, then the
# dasksom driver.  Resubmitting the same script after a failure resumes from the last epoch's
# checkpoint (dasksom train keeps OUTPUT/checkpoint.npz).
#
#   sbatch --nodes=4 --ntasks-per-node=1 --cpus-per-task=32 --mem=120G deploy/slurm.sh \
#          /scratch/data.zarr /scratch/som-run 100x100
#SBATCH --job-name=dasksom
#SBATCH --time=04:00:00
#SBATCH --requeue
set -euo pipefail
DATA=${1:?data path}
OUTPUT=${2:?output folder}
SIZE=${3:-50x50}
SCHEDULER_FILE="$OUTPUT/scheduler-$SLURM_JOB_ID.json"
mkdir -p "$OUTPUT"

dask scheduler --scheduler-file "$SCHEDULER_FILE" --dashboard-address :0 &
# One worker per task, each with its share of the task's memory; BLAS stays at one thread per
# Dask thread (the nanny sets OMP_NUM_THREADS=1).
srun --ntasks="$SLURM_NTASKS" dask worker --scheduler-file "$SCHEDULER_FILE" \
     --nthreads "$SLURM_CPUS_PER_TASK" --memory-limit "$(( SLURM_MEM_PER_NODE * 9 / 10 ))MiB" &

dasksom train "$DATA" --size "$SIZE" --scheduler-file "$SCHEDULER_FILE" --output "$OUTPUT"

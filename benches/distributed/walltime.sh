#!/usr/bin/env bash
# Wall time of one process against `mpirun -np 2` ranks on the same cores: training the Dino MLP
# and the digits UNet, and ParaDiGMS sampling (docs/distributed.md §4). Needs Open MPI; builds
# `cdm` with the mpi feature first. Prints one line per job, then each sample run's
# rounds, NFE, sampler wall time (s) and ranks from its stats.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p cdm-cli --features mpi -q
export CANDLE_NUM_THREADS=1 MIMALLOC_PURGE_DELAY=10000 RUST_LOG=warn
cdm=$PWD/target/release/cdm
runs=$(mktemp -d)
threads=${THREADS:-2} # one process gets them all; each of the 2 ranks gets half
mpi=(mpirun --allow-run-as-root --oversubscribe -np 2 -x RAYON_NUM_THREADS=$((threads / 2)) -x CANDLE_NUM_THREADS -x RUST_LOG)
seconds() { local start; start=$(date +%s.%N); "$@" >/dev/null 2>&1; echo "$(date +%s.%N) - $start" | bc; }
both() { # label, then the cdm arguments; `@` stands for the run/output name suffix
  local label=$1; shift
  local one=("${@//@/1}") two=("${@//@/2}")
  echo "$label: 1 process $(RAYON_NUM_THREADS=$threads seconds "$cdm" "${one[@]}") s, 2 ranks $(seconds "${mpi[@]}" "$cdm" "${two[@]}" --distributed) s"
}
both "train Dino MLP, 3000 steps, batch 256" train --runs-dir "$runs" --name dino-@ --steps 3000 --batch-size 256 --samples 0 --no-progress
both "train digits UNet, 200 steps, batch 64" train --dataset digits --runs-dir "$runs" --name digits-@ --steps 200 --batch-size 64 --samples 0 --no-progress
for n in 1 64; do
  both "ParaDiGMS DDPM-1000 p=64, Dino, n=$n" sample --run "$runs/dino-1" --parallel --window 64 --n $n --no-progress --out "$runs/dino-$n-@"
done
for n in 16 64; do
  both "ParaDiGMS DDPM-200 p=16, digits UNet, n=$n" sample --run "$runs/digits-1" --steps 200 --parallel --window 16 --n $n --no-progress --out "$runs/digits-$n-@"
done
for stats in "$runs"/*-[12]/stats.json; do
  echo "$(basename "$(dirname "$stats")"): $(grep -E '"(rounds|nfe|wall_seconds|ranks)"' "$stats" | tr -d ' \n')"
done
rm -rf "$runs"

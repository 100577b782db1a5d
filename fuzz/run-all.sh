#!/usr/bin/env bash
# Runs fuzz targets one after another (the machine's other cores stay free), each for
# SECONDS, from the committed seeds and the local corpus, and prints libFuzzer's last
# status line for each: executions, coverage, corpus size. A crash stops that target
# and leaves its input in artifacts/TARGET/.
#   fuzz/run-all.sh 600                       # every target, 10 minutes each
#   fuzz/run-all.sh 60 tar_walker gzip        # some targets
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:?usage: run-all.sh SECONDS [TARGET…]}
shift
targets=("$@")
((${#targets[@]})) || targets=(tar_walker gzip config auth_file manifest qcow2_decoder
  vmdk_decoder vhd_decoder vhdx_decoder vdi_decoder ova_decoder)
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" logs
  extra=()
  [[ $target == *_decoder ]] && extra=(-max_len=200000)
  dirs=("corpus/$target")
  [[ -d seeds/$target ]] && dirs+=("seeds/$target")
  RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "${dirs[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${extra[@]}" \
    >"logs/$target.log" 2>&1
  status=$?
  echo "$target: exit $status; $(grep -E '^(#[0-9]+|Done)' "logs/$target.log" | tail -n 2 | tr '\n' ' ')"
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "logs/$target.log" | tr '\n' ' '
  echo
done

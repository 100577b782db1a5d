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
  if [[ $target == vhdx_decoder ]]; then
    # No committed seed: the smallest VHDX qemu-img writes is 8 MiB (MiB-aligned
    # regions). The corpus gets one (after its chunk-size byte), and inputs may be
    # that long.
    if [[ ! -e corpus/$target/qemu-img ]]; then
      qemu-img create -q -f vhdx -o subformat=dynamic,block_size=1M,log_size=1M \
        "corpus/$target/image" 1M
      { printf '\x07'; cat "corpus/$target/image"; } >"corpus/$target/qemu-img"
      rm "corpus/$target/image"
    fi
    extra=(-max_len=8400000)
  fi
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

# Shared by compare-http.sh and sparse-xz.sh: a raw disk of real data with holes, an
# nginx serving a directory on 127.0.0.1, cold caches and medians.
# Sourced, not run.

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
bytes() { numfmt --from=iec "$1"; }

# data_of SIZE FILE: SIZE bytes of real files (a tar of /usr) in FILE. A line first, so
# that a disk made of it does not start with a tar header (it would be read as an
# archive). head closes the pipe once it has enough: tar's SIGPIPE is expected.
data_of() {
    { echo "bootsource bench disk"; tar cf - /usr 2>/dev/null || true; } | head -c "$(bytes "$1")" >"$2"
    [ "$(stat -c %s "$2")" = "$(bytes "$1")" ] || { echo "/usr holds less than $1" >&2; exit 1; }
}

# spread DATA-FILE VIRTUAL OUT: a raw disk of VIRTUAL bytes holding DATA-FILE in
# 64 MiB pieces spread evenly over it, zeros (holes) between.
spread() {
    local data virtual piece=$((64 << 20)) pieces stride
    data=$(stat -c %s "$1") virtual=$(bytes "$2")
    pieces=$((data / piece)) stride=$((virtual / (data / piece) / piece * piece))
    truncate -s "$virtual" "$3"
    for ((i = 0; i < pieces; i++)); do
        dd if="$1" of="$3" bs=64M skip="$i" seek=$((i * stride / piece)) \
            count=1 conv=notrunc,sparse status=none
    done
}

# serve ROOT WORK: nginx serving ROOT on 127.0.0.1:$PORT (set here), its files in
# WORK; stopped, and WORK removed, on exit.
serve() {
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    local work=$2
    cat >"$work/nginx.conf" <<CONF
daemon off; master_process off; pid $work/nginx.pid; error_log $work/error.log;
events { worker_connections 16; }
http { access_log off; sendfile on; disable_symlinks off;
  client_body_temp_path $work/t1; proxy_temp_path $work/t2; fastcgi_temp_path $work/t3;
  uwsgi_temp_path $work/t4; scgi_temp_path $work/t5;
  server { listen 127.0.0.1:$PORT; root $1; } }
CONF
    nginx -p "$work" -e "$work/error.log" -c "$work/nginx.conf" &
    NGINX=$!
    trap 'kill $NGINX 2>/dev/null; rm -rf "'"$work"'"' EXIT
    until curl -s -o /dev/null "http://127.0.0.1:$PORT/"; do sleep 0.1; done
}

cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }

median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.2f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

#!/usr/bin/env bash
# Stop a private smbd started by samba-up.sh (copied from /work/shared/examples). Kills only PIDs recorded under
# STATE_DIR (smbd master + anything with a pid file in STATE_DIR/pid, e.g. an
# on-demand samba-dcerpcd), never by process name.
# Usage: samba-down.sh STATE_DIR [--purge]   (--purge also deletes STATE_DIR)
set -uo pipefail
STATE=${1:?usage: samba-down.sh STATE_DIR [--purge]}
[ -d "$STATE" ] || { echo "no such state dir $STATE" >&2; exit 0; }

pids=()
[ -f "$STATE/smbd.pid" ] && pids+=("$(cat "$STATE/smbd.pid")")
for f in "$STATE"/pid/*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done

# Only signal PIDs whose command line references this STATE dir's config
# (protects against PID reuse).
alive=()
for p in $(printf '%s\n' "${pids[@]}" | sort -u); do
  [[ "$p" =~ ^[0-9]+$ ]] || continue
  if [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF "$STATE/smb.conf"; then
    # also collect direct children (per-connection smbd forks)
    for c in $(cat /proc/$p/task/*/children 2>/dev/null); do alive+=("$c"); done
    alive+=("$p")
  fi
done
mapfile -t alive < <(printf '%s\n' "${alive[@]}" | grep -E '^[0-9]+$' | sort -u)
if [ ${#alive[@]} -gt 0 ]; then
  kill -TERM "${alive[@]}" 2>/dev/null
  for _ in $(seq 1 50); do
    still=0; for p in "${alive[@]}"; do kill -0 "$p" 2>/dev/null && still=1; done
    [ $still = 0 ] && break; sleep 0.1
  done
  for p in "${alive[@]}"; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
  echo "stopped: ${alive[*]}" >&2
else
  echo "nothing running for $STATE" >&2
fi
rm -f "$STATE/smbd.pid"
[ "${2:-}" = "--purge" ] && rm -rf "$STATE"
exit 0

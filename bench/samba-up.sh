#!/usr/bin/env bash
# Start a private smbd instance (NOT the system service) with all state under a
# temp dir. Safe to run several instances with different STATE dirs/ports.
#
# Usage: samba-up.sh STATE_DIR [PORT] [DATA_DIR] [UPLOAD_DIR]
#   STATE_DIR  all config/state/logs/pids go here (created)
#   PORT       TCP port to listen on, 127.0.0.1 only (default 4450; 445 works as root)
#   DATA_DIR   directory exported as share "bench" (default STATE_DIR/data)
#   UPLOAD_DIR if given, exported read-write as share "up" (benchmark uploads);
#              "bench" is then exported read-only so a benchmark cannot damage
#              its source data.
# (Copied from /work/shared/examples/samba-up.sh; adapted for bench/run.)
# Env:
#   SMB_LISTEN   address to bind (default 127.0.0.1; keep it on loopback)
#   SMB_EXTRA    extra smb.conf lines for [global] (newline separated)
#   SMB_LOGLEVEL smbd log level (default 1)
#
# Prints the smbd master PID on stdout (last line) and writes it to STATE_DIR/smbd.pid.
# Can be run inside a network namespace:  ip netns exec NS samba-up.sh ...
set -euo pipefail

STATE=${1:?usage: samba-up.sh STATE_DIR [PORT] [DATA_DIR]}
PORT=${2:-4450}
DATA=${3:-$STATE/data}
UPLOAD=${4:-}
LISTEN=${SMB_LISTEN:-127.0.0.1}
LOGLEVEL=${SMB_LOGLEVEL:-1}
SMBUSER=bench
SMBPASS=benchpass

case "$LISTEN" in
  127.*|::1) ;;
  *) echo "refusing to listen on non-loopback address $LISTEN" >&2; exit 2;;
esac

command -v smbd >/dev/null || { echo "smbd not installed (apt-get install samba)" >&2; exit 1; }

mkdir -p "$STATE" "$DATA"
STATE=$(cd "$STATE" && pwd)
DATA=$(cd "$DATA" && pwd)
DATA_RO=no
if [ -n "$UPLOAD" ]; then
  mkdir -p "$UPLOAD"; UPLOAD=$(cd "$UPLOAD" && pwd); DATA_RO=yes
fi
for d in private lock state cache pid log ncalrpc; do mkdir -p "$STATE/$d"; done
chmod 700 "$STATE/private"

# Unix account that the share is accessed as.
if ! id -u "$SMBUSER" >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin "$SMBUSER"
fi
chown "$SMBUSER": "$DATA"
# smbd (as user bench) must be able to reach DATA: make parent dirs traversable.
p=$(dirname "$DATA"); while [ "$p" != / ]; do chmod o+x "$p" 2>/dev/null || true; p=$(dirname "$p"); done
if [ -n "$UPLOAD" ]; then
  chown "$SMBUSER": "$UPLOAD"
  p=$(dirname "$UPLOAD"); while [ "$p" != / ]; do chmod o+x "$p" 2>/dev/null || true; p=$(dirname "$p"); done
fi

CONF="$STATE/smb.conf"
cat > "$CONF" <<EOF
[global]
   workgroup = WORKGROUP
   netbios name = SMBBENCH
   server role = standalone server
   security = user
   map to guest = never
   idmap config * : backend = tdb
   idmap config * : range = 3000-7999
   passdb backend = tdbsam:$STATE/private/passdb.tdb

   # --- all state under $STATE ---
   private dir = $STATE/private
   lock directory = $STATE/lock
   state directory = $STATE/state
   cache directory = $STATE/cache
   pid directory = $STATE/pid
   ncalrpc dir = $STATE/ncalrpc
   log file = $STATE/log/smbd.log
   max log size = 0
   log level = $LOGLEVEL
   usershare max shares = 0

   # --- listen only on loopback, one port, no NetBIOS ---
   interfaces = $LISTEN
   bind interfaces only = yes
   smb ports = $PORT
   disable netbios = yes

   # --- protocol ---
   server min protocol = SMB2_10
   server max protocol = SMB3
   server signing = auto

   # --- no printing ---
   load printers = no
   printing = bsd
   printcap name = /dev/null
   disable spoolss = yes

   # --- performance ---
   socket options = TCP_NODELAY IPTOS_LOWDELAY
   use sendfile = yes
   min receivefile size = 16384
   aio read size = 1
   aio write size = 1
   smb2 max read = 8388608
   smb2 max write = 8388608
   smb2 max trans = 8388608
   smb2 max credits = 8192
   strict sync = no
   sync always = no
   kernel oplocks = no
   kernel share modes = no
   posix locking = no
   deadtime = 0
$(printf '%s\n' "${SMB_EXTRA:-}")

[bench]
   path = $DATA
   read only = $DATA_RO
   browseable = yes
   valid users = $SMBUSER
   force user = $SMBUSER
   create mask = 0644
   directory mask = 0755
$(if [ -n "$UPLOAD" ]; then printf '%s\n' "" "[up]" "   path = $UPLOAD" "   read only = no" \
   "   valid users = $SMBUSER" "   force user = $SMBUSER" "   create mask = 0644" "   directory mask = 0755"; fi)
EOF

testparm -s "$CONF" >"$STATE/log/testparm.out" 2>&1 || { cat "$STATE/log/testparm.out" >&2; exit 1; }

# Add/refresh the SMB password for 'bench' in this instance's private passdb.
printf '%s\n%s\n' "$SMBPASS" "$SMBPASS" | smbpasswd -c "$CONF" -a -s "$SMBUSER" >/dev/null

# Start smbd in the foreground (as a background job) so we know its PID exactly.
# --no-process-group keeps it in our session; setsid detaches it from the terminal.
setsid smbd --foreground --no-process-group -s "$CONF" \
   </dev/null >"$STATE/log/smbd.stdout" 2>&1 &
PID=$!
echo "$PID" > "$STATE/smbd.pid"

# Wait (bounded: 10 s) until the port accepts connections.
ok=0
for _ in $(seq 1 100); do
  if ! kill -0 "$PID" 2>/dev/null; then break; fi
  if (exec 3<>"/dev/tcp/$LISTEN/$PORT") 2>/dev/null; then ok=1; break; fi
  sleep 0.1
done
if [ $ok != 1 ]; then
  echo "smbd failed to start on $LISTEN:$PORT; log:" >&2
  tail -n 30 "$STATE/log/smbd.log" "$STATE/log/smbd.stdout" >&2 || true
  kill "$PID" 2>/dev/null || true
  exit 1
fi
echo "smbd up: pid=$PID listen=$LISTEN:$PORT share=//$LISTEN/bench -> $DATA conf=$CONF" >&2
echo "$PID"

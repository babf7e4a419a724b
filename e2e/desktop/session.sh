#!/usr/bin/env bash
# Runs inside `dbus-run-session` (see scripts/test-desktop): a private session bus, an X
# server, an unlocked GNOME Keyring, an XEmbed tray host and tauri-driver, then the tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

display=":$((90 + RANDOM % 9))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >"$ARTIFACTS/xvfb.log" 2>&1 &
pids+=($!)
export DISPLAY="$display"
for _ in $(seq 100); do
  [ -S "/tmp/.X11-unix/X${display#:}" ] && break
  sleep 0.1
done
if [ ! -S "/tmp/.X11-unix/X${display#:}" ]; then
  echo "Xvfb did not open display $display within 10 s; see $ARTIFACTS/xvfb.log:" >&2
  cat "$ARTIFACTS/xvfb.log" >&2
  exit 1
fi

# The Secret Service the app's keychain talks to, unlocked as a login would.
eval "$(printf 'desktop-test-password' | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL

# The tray: libayatana-appindicator falls back to XEmbed, which trayer hosts.
trayer --edge top --align right --widthtype request --height 32 --transparent false \
  --tint 0x202020 >"$ARTIFACTS/trayer.log" 2>&1 &
pids+=($!)

tauri-driver --port "$TAURI_DRIVER_PORT" --native-driver /usr/bin/WebKitWebDriver \
  >"$ARTIFACTS/tauri-driver.log" 2>&1 &
driver=$!
pids+=("$driver")
# The tests connect to it at once: wait until it accepts connections (bash's /dev/tcp).
deadline=$((SECONDS + 30))
until (exec 3<>"/dev/tcp/127.0.0.1/$TAURI_DRIVER_PORT") 2>/dev/null; do
  if ! kill -0 "$driver" 2>/dev/null; then
    echo "tauri-driver exited before accepting connections on port $TAURI_DRIVER_PORT;" \
      "see $ARTIFACTS/tauri-driver.log:" >&2
    cat "$ARTIFACTS/tauri-driver.log" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "tauri-driver did not accept connections on port $TAURI_DRIVER_PORT within 30 s;" \
      "see $ARTIFACTS/tauri-driver.log:" >&2
    cat "$ARTIFACTS/tauri-driver.log" >&2
    exit 1
  fi
  sleep 0.1
done

"$PYTHON" -m pytest -q "$root/e2e/desktop" "$@"

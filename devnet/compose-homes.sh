#!/usr/bin/env bash
# Rewrite a devnet's node configs for containers: listen on all interfaces inside the
# container, and reach peers by their compose service name on port 26656. The API,
# listening beyond loopback, is served over HTTPS (`cityledger node tls-fingerprint` gives the pin).
set -euo pipefail
home=${1:?usage: compose-homes.sh DEVNET_HOME}
names=()
for dir in "$home"/*/; do [ -f "$dir/config.toml" ] && names+=("$(basename "$dir")"); done
for name in "${names[@]}"; do
  cfg="$home/$name/config.toml"
  peers=""
  for other in "${names[@]}"; do
    [ "$other" = "$name" ] && continue
    peers+="${peers:+, }\"$other:26656\""
  done
  sed -i -E "s|^listen = \"127.0.0.1:[0-9]+\"|listen = \"0.0.0.0:PORT\"|" "$cfg"
  awk -v peers="[$peers]" '
    /^\[p2p\]/ {section="p2p"} /^\[api\]/ {section="api"} /^\[mempool\]/ {section="other"}
    /^listen = "0.0.0.0:PORT"/ { if (section=="p2p") $0="listen = \"0.0.0.0:26656\""; else $0="listen = \"0.0.0.0:8080\"" }
    /^peers = / && section=="p2p" { $0="peers = " peers }
    /^tls = false/ && section=="api" { $0="tls = true" }
    { print }' "$cfg" > "$cfg.tmp" && mv "$cfg.tmp" "$cfg"
done
echo "rewrote ${#names[@]} configs under $home"

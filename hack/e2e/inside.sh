#!/bin/sh
# Runs INSIDE the test containers (podman and ctr), as uid 1000 with no capabilities. Prints what
# the container sees, one "IN-" line per fact; the harness on the host asserts on these lines.
# usage: cfe2e-inside PEER_IP
peer=$1
echo "IN-ID $(id)"
grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status | tr -s '\t' ' ' | sed 's/^/IN-/'
for l in cvd-ebr cvd-wbr cvd-mtap-01 cvd-wifiap-01 cvd-etap-01 cvd-wtap-01; do
    if [ -e "/sys/class/net/$l" ]; then
        master=$(basename "$(readlink "/sys/class/net/$l/master" 2>/dev/null)" 2>/dev/null)
        flags=$(cat "/sys/class/net/$l/tun_flags" 2>/dev/null)
        echo "IN-LINK $l master=${master:--} tun_flags=${flags:--} alias=$(cat "/sys/class/net/$l/ifalias")"
    else
        echo "IN-NOLINK $l"
    fi
done
ip -o -4 addr show | awk '{print "IN-ADDR", $2, $4}'
echo "IN-IP-FORWARD $(cat /proc/sys/net/ipv4/ip_forward)"
ls -ln /dev/net/tun | sed 's/^/IN-DEV /'
tunprobe attach cvd-mtap-01
tunprobe attach cvd-wifiap-01
tunprobe create cfe2e-own0
# the pod itself reaches the peer through the primary plugin (busybox wget -T segfaults: timeout)
echo "IN-PEER $(timeout 5 wget -q -O - "http://$peer/cgi-bin/whoami")"
echo IN-READY
trap 'exit 0' TERM
sleep 600 &
wait

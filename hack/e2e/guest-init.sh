#!/bin/sh
# /init of the e2e guest (busybox-static initramfs, Debian kernel). Configures eth0 the way
# Cuttlefish configures the guest side of its mobile interface (cvd-mtap-NN on the host):
# 192.168.97.2/30, default route via 192.168.97.1; eth1 (cvd-etap-01) takes its address by DHCP,
# as Android's Ethernet does, without a default route. Then it pings and fetches the peer given on the
# kernel command line as cfe2e.peer=IP, prints what the peer answered, and powers off.
# With cfe2e.fastboot=SECONDS it first listens on TCP port 5554 of eth1 (IPv6 link-local, where
# Cuttlefish's fastboot proxy connects over cvd-ebr) and waits up to SECONDS for one connection.
# Every line the harness looks for starts with "GUEST-".
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
up() { cut -d' ' -f1 /proc/uptime; }
peer= fastboot=
for arg in $(cat /proc/cmdline); do
    case $arg in
    cfe2e.peer=*) peer=${arg#cfe2e.peer=} ;;
    cfe2e.fastboot=*) fastboot=${arg#cfe2e.fastboot=} ;;
    esac
done
echo "GUEST-INIT uptime=$(up) peer=$peer"
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m.ko" || echo "GUEST-INSMOD-FAILED $m"; done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
ip link set lo up
ip link set eth0 up
ip addr add 192.168.97.2/30 dev eth0
ip route add default via 192.168.97.1
echo "GUEST-NET-UP uptime=$(up) $(ip -o -4 addr show dev eth0 | awk '{print $2, $4}') $(ip route | grep default)"
# eth1 sits on cvd-etap-01, a port of cvd-ebr: like Android's Ethernet, it takes DHCP.
i=0
while [ ! -e /sys/class/net/eth1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
ip link set eth1 up
udhcpc -i eth1 -f -q -n -t 10 -T 1 -s /bin/dhcp-hook 2>/dev/null || echo "GUEST-DHCP-FAILED uptime=$(up)"
if [ -n "$fastboot" ]; then
    echo "GUEST-FASTBOOT-LISTEN $(ip -o -6 addr show dev eth1 scope link | awk '{print $4}')"
    echo GUEST-FASTBOOT-HELLO | timeout "$fastboot" nc -l -p 5554 >/tmp/fastboot && echo "GUEST-FASTBOOT-CONNECTED $(cat /tmp/fastboot)"
fi
n=0 ok=0
while [ $n -lt 50 ]; do
    ping -c 1 -W 1 "$peer" >/tmp/ping 2>&1 && { ok=1; break; }
    n=$((n + 1)); sleep 0.2
done
if [ $ok = 1 ]; then echo "GUEST-FIRST-PING uptime=$(up) retries=$n"; else echo "GUEST-PING-FAILED uptime=$(up)"; cat /tmp/ping; fi
ping -c 3 "$peer" | sed 's/^/GUEST-PING3 /'
# busybox 1.35 wget -T segfaults: bound it with timeout instead
echo "GUEST-WGET $(timeout 10 wget -q -O - "http://$peer/cgi-bin/whoami")"
echo "GUEST-DONE uptime=$(up)"
poweroff -f

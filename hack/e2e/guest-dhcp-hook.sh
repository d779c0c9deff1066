#!/bin/sh
# udhcpc's hook inside the e2e guest: reports each event on the console for the harness, and
# applies a lease to the interface (address only; eth0 keeps the default route).
echo "GUEST-DHCP $1 ip=$ip mask=$subnet router=$router dns=$dns lease=$lease"
case $1 in
bound | renew) ip addr add "$ip/24" dev "$interface" ;;
esac

"""Free loopback ports for the brokers the e2e and cluster tests start.

They come from below the kernel's ephemeral range (ip_local_port_range): a
broker restarted on its port must not find it taken as the source port of
some client's connection, which the kernel picks from that range (seen as
"Address already in use" on a restart)."""
import random
import socket


def _ephemeral_floor():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count):
    """`count` distinct free loopback ports (held open together so none
    repeats); from the ephemeral range only if the range below is full."""
    ceiling = min(_ephemeral_floor(), 65536)
    floor = max(1024, ceiling - 12000)
    sockets = []
    try:
        for _ in range(50 * count):
            if len(sockets) == count:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", random.randrange(floor, ceiling)))
            except OSError:
                s.close()
                continue
            sockets.append(s)
        while len(sockets) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()

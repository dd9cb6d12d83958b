"""Network partitions between cluster nodes on one machine: small asyncio TCP
proxies on 127.0.0.1 that forward between nodes and can black-hole the
traffic of one node while its process lives and clients still reach it.

Layout (no broker code change needed):
- Raft (CONTROLLER) traffic: node i reaches node j through a proxy of its
  own for the link i->j. Each node gets its own `controller.quorum.voters`:
  its own entry at its real CONTROLLER port (Holdfast checks that port), the
  others' at the link proxies; a shared explicit `cluster.id` (the default
  id derives from the voter list, which now differs per node). libraft
  answers a message at the address the sender announced in its handshake
  (its real one), so answers bypass the proxies; requests do not, so a cut
  link carries nothing either way. A node that installs a Raft snapshot
  takes the sender's address list; the tests here stay far below the
  snapshot threshold.
- Kafka traffic: every node advertises (`advertised.listeners`) a proxy in
  front of its client listener; clients and other brokers (follower
  fetches, registration, heartbeats, AlterPartition, forwarding) all go
  through it. The proxy reads the first request's client_id: Holdfast's own
  connections name their node (`holdfast-broker-N`, `holdfast-replica-N`,
  `holdfast-replica-fetcher-N`), anything else is a client and is never cut.

isolate(n) black-holes, from then on, every byte between node n and the
others in both directions (connections stay open, as in a real partition;
no resets). heal() closes the connections that lost bytes (their streams
are broken) and lets everything through again.
"""
import asyncio
import re
import struct
import threading

from conftest import Cluster, Node, free_ports, holdfast_binary

NODE_CLIENT_ID = re.compile(rb"^holdfast-(?:broker|replica|replica-fetcher)-(\d+)$")
CHUNK = 65536


class Netsplit:
    """Owns the proxies' event loop (a daemon thread) and the cut state."""

    def __init__(self):
        self.isolated = set()
        self.broken = set()  # (reader, writer) pairs that dropped bytes
        self.dropped_bytes = 0
        self.loop = asyncio.new_event_loop()
        self.servers = []
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def blocked(self, src, dst):
        return src is not None and src != dst and (src in self.isolated or dst in self.isolated)

    def add_proxy(self, listen_port, target_port, dst, src=None, tap=None):
        """A proxy on 127.0.0.1:listen_port to 127.0.0.1:target_port (node
        `dst`); `src` is the connecting node for a link proxy, None to learn
        it from the first Kafka request's client_id. `tap(data)`, if given,
        sees every chunk the proxy forwards, both ways (on the proxies' loop)."""
        async def start():
            server = await asyncio.start_server(
                lambda r, w: self._serve(r, w, target_port, dst, src, tap), "127.0.0.1",
                listen_port)
            self.servers.append(server)
        self._call(start())

    async def _serve(self, reader, writer, target_port, dst, src, tap):
        first = b""
        try:
            if src is None:
                size = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">i", size)[0])
                first = size + body
                (length,) = struct.unpack(">h", body[8:10])
                match = NODE_CLIENT_ID.match(body[10:10 + max(length, 0)])
                src = int(match.group(1)) if match else None
            if self.blocked(src, dst):
                await self._sink(reader, writer)
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except (OSError, asyncio.IncompleteReadError, struct.error):
            writer.close()
            return
        if first:
            up_writer.write(first)
        conn = (writer, up_writer)
        await asyncio.gather(self._pump(reader, up_writer, src, dst, conn, tap),
                             self._pump(up_reader, writer, src, dst, conn, tap),
                             return_exceptions=True)
        for w in conn:
            w.close()

    async def _sink(self, reader, writer):
        """A connection made across the cut: accepted, read and dropped."""
        conn = (writer,)
        self.broken.add(conn)
        try:
            while await reader.read(CHUNK):
                pass
        except (OSError, ConnectionError):
            pass
        writer.close()

    async def _pump(self, reader, writer, src, dst, conn, tap):
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if conn in self.broken or self.blocked(src, dst):
                    self.broken.add(conn)
                    self.dropped_bytes += len(data)
                    continue
                if tap:
                    tap(data)
                writer.write(data)
                await writer.drain()
        finally:
            for w in conn:
                w.close()

    def isolate(self, node_id):
        async def cut():
            self.isolated.add(node_id)
        self._call(cut())

    async def _mend(self):
        self.isolated.clear()
        broken, self.broken = self.broken, set()
        for conn in broken:
            for w in conn:
                w.close()

    def heal(self):
        self._call(self._mend())

    def close(self):
        async def shutdown():
            for s in self.servers:
                s.close()
            await self._mend()
        try:
            self._call(shutdown())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


def proxied_cluster(tmp_path, settings, size=3, node_class=Node, raft_tap=None):
    """`size` nodes (of `node_class`) whose node-to-node traffic runs through
    a Netsplit; returns (cluster, netsplit). Nodes are started; the caller
    stops them and closes the netsplit. `raft_tap(data)` sees the bytes of
    every Raft link proxy (Netsplit.add_proxy's tap)."""
    ids = list(range(1, size + 1))
    links = [(i, j) for i in ids for j in ids if i != j]
    ports = iter(free_ports(3 * size + len(links)))
    client = {i: next(ports) for i in ids}
    raft = {i: next(ports) for i in ids}
    front = {i: next(ports) for i in ids}
    link = {pair: next(ports) for pair in links}
    net = Netsplit()
    for i in ids:
        net.add_proxy(front[i], client[i], dst=i)
    for (i, j), port in link.items():
        net.add_proxy(port, raft[j], dst=j, src=i, tap=raft_tap)
    nodes = []
    for i in ids:
        voters = ",".join(f"{j}@127.0.0.1:{raft[j] if j == i else link[(i, j)]}" for j in ids)
        node_settings = {"broker.session.timeout.ms": 3000, "broker.heartbeat.interval.ms": 500,
                         "cluster.id": "netsplit-test-cluster",
                         "advertised.listeners": f"PLAINTEXT://127.0.0.1:{front[i]}"}
        node_settings.update(settings)
        node = node_class(holdfast_binary(), i, tmp_path / f"node-{i}", client[i], raft[i],
                          voters, node_settings)
        node.front_port = front[i]
        nodes.append(node)
    cluster = Cluster(nodes)
    try:
        for n in nodes:
            n.start()
    except BaseException:
        for n in nodes:
            n.stop()
        net.close()
        raise
    return cluster, net

// A TCP proxy in front of a server, for network trouble on demand: partition()
// stops passing bytes both ways (they wait, as on a stalled network), heal() lets
// them through again; down() makes the port refuse connections and cuts the open
// ones (as when the server behind it stops), up() serves again on the same port.
import { createServer, Socket, type Server } from "node:net";

export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private partitioned = false;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(target.port, target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
        if (this.partitioned) socket.pause();
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(this.port, "127.0.0.1", resolve));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
    return `127.0.0.1:${this.port}`;
  }

  /** The port refuses connections and every open one is cut. */
  async down(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.dropConnections();
    await closed;
  }

  /** Accepts connections again, on the same port. */
  async up(): Promise<void> {
    await this.listen();
  }

  partition(): void {
    this.partitioned = true;
    for (const socket of this.sockets) socket.pause();
  }

  /** Cuts every open connection (as a flaky network or a load balancer reset would); new ones are accepted. */
  dropConnections(): number {
    const dropped = this.sockets.size;
    for (const socket of this.sockets) socket.destroy();
    return dropped;
  }

  heal(): void {
    this.partitioned = false;
    for (const socket of this.sockets) socket.resume();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

import { nodeSocketBackend } from "../../src/transport/tcp/node_socket.ts";
import { tcpTransportSuite } from "./tcp_suite.ts";

tcpTransportSuite("node", nodeSocketBackend);

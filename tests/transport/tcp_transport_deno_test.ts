import { denoSocketBackend } from "../../src/transport/tcp/deno_socket.ts";
import { tcpTransportSuite } from "./tcp_suite.ts";

tcpTransportSuite("deno", denoSocketBackend);

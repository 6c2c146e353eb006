/**
 * The agent's introspect: one HTTP server with the Sandesh requests, the Prometheus metrics and the live
 * page, over a running instance's state (the same view the control socket's tools have).
 * @module
 */
import type { Instance } from '../cli/tools';
import { IntrospectServer, SERVER_LIMITS } from './server';
import { introspectRoutes } from './requests';
import { metricsRoutes } from './metrics';
import { pageRoutes } from './page';

export interface IntrospectOptions {
  host: string;
  port: number;
  /** Serve the write requests (Snh_DeleteAllFlowRecords, Snh_AddAgingConfig, …); 403 otherwise. */
  allowWrites: boolean;
}

/** Start the introspect server; @returns it and the port it listens on. */
export async function startIntrospect(inst: Instance, o: IntrospectOptions): Promise<{ server: IntrospectServer; port: number }> {
  const server = new IntrospectServer(SERVER_LIMITS);
  server.use(...introspectRoutes(inst, o), ...metricsRoutes(inst), ...pageRoutes(inst));
  const addr = await server.listen(o.host, o.port);
  return { server, port: addr.port };
}

/**
 * `/metrics`: the node in the Prometheus text format. (To be written.)
 * @module
 */
import type { Instance } from '../cli/tools';
import type { Handler } from './server';

export function metricsRoutes(_inst: Instance): Handler[] {
  return [];
}

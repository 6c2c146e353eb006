/**
 * The Sandesh requests of the agent's introspect (`/Snh_*`) and its module pages. (To be written.)
 * @module
 */
import type { Instance } from '../cli/tools';
import type { Handler } from './server';
import type { IntrospectOptions } from './index';

export function introspectRoutes(_inst: Instance, _o: IntrospectOptions): Handler[] {
  return [];
}

/**
 * `/`: the live page and the JSON it polls. (To be written.)
 * @module
 */
import type { Instance } from '../cli/tools';
import type { Handler } from './server';

export function pageRoutes(_inst: Instance): Handler[] {
  return [];
}

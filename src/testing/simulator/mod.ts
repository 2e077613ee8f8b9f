/**
 * The deterministic cluster simulator and its network.
 *
 * @module
 */

export {
  ALL_FAULTS,
  type FaultKind,
  replayCommand,
  type SimLog,
  type SimOptions,
  type SimResult,
  simulate,
  type SimViolation,
} from "./simulator.ts";
export { type NetworkFaultRates, SimNetwork, simRandom } from "./network.ts";

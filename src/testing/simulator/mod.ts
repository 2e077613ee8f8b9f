/**
 * The deterministic cluster simulator: the shipped `RaftServer` and
 * `WalLog` on a simulated disk and network, on virtual time.
 *
 * @module
 */

export {
  ALL_FAULTS,
  type FaultKind,
  replayCommand,
  type SimEvent,
  type SimOptions,
  type SimResult,
  type SimStateMachineKind,
  simulate,
  type SimViolation,
} from "./simulator.ts";
export { simRandom } from "./cluster.ts";
export { NodeScheduler, VirtualLoop } from "./virtual_time.ts";
export {
  type Applied,
  type ApplyObserver,
  ListStateMachine,
  RecordingStateMachine,
} from "./state_machines.ts";

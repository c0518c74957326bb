/** L0's side of the nested paravirtual L0↔L1 interface (docs/npv-abi.md). */
export { L2_APIC_PFN, NpvEngine } from "./engine.js";
export { checkEpt02 } from "./ept02.js";
export { L2Map } from "./l2-map.js";
export { L1State, L2Vcpu, L2Vm } from "./state.js";

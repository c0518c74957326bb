export { NestedVmxEngine, type NestedVmxOptions, type NestedVmxTotals } from "./engine.js";
